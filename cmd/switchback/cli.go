package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/console"
	"github.com/switchbackhq/switchback/internal/controlclient"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/wire"
)

// cliFlags are the flags every API verb takes.
type cliFlags struct {
	server, tokenFile string
	json              bool
}

func (f *cliFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	server := getenv("SWITCHBACK_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	data := getenv("SWITCHBACK_DATA")
	if data == "" {
		data = "./switchback-data"
	}
	fs.StringVar(&f.server, "server", server, "control service URL ($SWITCHBACK_SERVER)")
	fs.StringVar(&f.tokenFile, "token-file", filepath.Join(data, "admin.token"), "file holding the token, read when $SWITCHBACK_TOKEN is unset")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
}

func (f *cliFlags) client(getenv func(string) string) (*controlclient.Client, error) {
	token := strings.TrimSpace(getenv("SWITCHBACK_TOKEN"))
	if token == "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("no token: set SWITCHBACK_TOKEN or pass --token-file (%v)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return controlclient.New(f.server, token), nil
}

// verb describes one CLI verb.
type verb struct {
	args    string // positional arguments, for usage
	nargs   int    // -1 for any
	summary string
	run     func(ctx context.Context, c *controlclient.Client, v *verbRun) error
}

// verbRun is one invocation of a verb.
type verbRun struct {
	args   []string
	reason string
	force  bool
	all    bool
	after  uint64
	limit  int
	json   bool
	out    io.Writer
	// stderr takes progress, so that out holds only the result.
	stderr    io.Writer
	replay    replayFlags
	reconcile reconcileFlags
	notify    notificationsFlags
	// set holds the flags given on the command line.
	set map[string]bool
	// replayAfter asks a revert to replay the mismatched events.
	replayAfter bool
	// witnesses are the files "audit verify" checks the log against.
	witnesses []string
	// state and migration select the change requests "changes" lists.
	state, migration string
}

var verbs = map[string]verb{
	"status":    {"", 0, "Shows migrations, partners by stage, cohorts and kill switches.", status},
	"gate":      {"MIGRATION COHORT", 2, "Shows the gate report for advancing a cohort now; exits 1 when the gates refuse or wait for data.", gateVerb},
	"advance":   {"MIGRATION COHORT", 2, "Moves the cohort's partners at its lowest stage one stage forward, if the gates pass for each. When the migration requires approvals for the stage it moves into, files a change request instead and prints it: another operator approves it with \"switchback approve ID\".", advance},
	"stage":     {"MIGRATION PARTNER STAGE", 3, "Sets one partner's stage. Forward moves go one step and pass the gates unless --force. When the migration requires approvals for that stage, files a change request instead and prints it.", stage},
	"changes":   {"[ID]", -1, "Lists change requests (moves that wait for approvals), newest first: pending ones unless --state; with an ID, shows that one in full, with its approvals, how it ended and the gate report of a failed one.", changesVerb},
	"approve":   {"ID", 1, "Approves a change request with your token (not the requester's; each token counts once). The approval that completes it makes the move, with the gates judged again then; exits 1 when the move failed, and prints why.", approveVerb},
	"reject":    {"ID", 1, "Rejects a pending change request; --reason is required. Nothing moves.", rejectVerb},
	"autopilot": {"on|off|status [MIGRATION]", -1, autopilotHelp, autopilotVerb},
	"revert":    {"MIGRATION | --all", -1, "Turns the kill switch on: every partner of the migration (or of all, with --all) evaluates to legacy.", revert},
	"resume":    {"MIGRATION", 1, "Turns the kill switch off: partners evaluate to their stages as they were.", resume},
	"audit":     {"[verify | head]", -1, "Lists the audit log; \"audit verify\" recomputes its hash chain and says where it breaks, and with --witness checks that the log still holds the heads routers saw (their snapshot files) or \"audit head\" exported; \"audit head\" prints the log's head as JSON, to keep elsewhere as a witness.", auditVerb},
	"replay":    {"", 0, "Sends a window of journaled events again through a pipeline, with their original ids, and follows its progress.", replayVerb},
	"reconcile": {"[show ID | backfill ID | list]", -1, reconcileHelp, reconcileVerb},

	// The targets of notices (notifications.go).
	"notifications": {"[show NAME | put NAME | delete NAME | test NAME]", -1, notificationsHelp, notificationsVerb},
}

func runCLI(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	v := verbs[name]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf cliFlags
	cf.register(fs, getenv)
	r := &verbRun{out: stdout, stderr: stderr, set: map[string]bool{}}
	switch name {
	case "advance", "stage", "revert", "resume", "replay", "reconcile", "approve", "notifications":
		fs.StringVar(&r.reason, "reason", "", "why: written to the audit log")
	case "autopilot":
		fs.StringVar(&r.reason, "reason", "", "why (required by off): written to the audit log and shown while it is paused")
	case "reject":
		fs.StringVar(&r.reason, "reason", "", "why the change is rejected (required): written to the change request and the audit log")
	case "changes":
		fs.StringVar(&r.state, "state", "pending", "pending, applied, rejected, expired, failed, or all")
		fs.StringVar(&r.migration, "migration", "", "only the change requests of this migration")
	}
	switch name {
	case "advance", "stage":
		fs.BoolVar(&r.force, "force", false, "move even though the gates refuse (needs --reason)")
	case "revert":
		fs.BoolVar(&r.all, "all", false, "revert every migration in one snapshot version")
		fs.BoolVar(&r.replayAfter, "replay", false, "also replay through legacy what the new pipeline got wrong, late comparisons included (on serve's router, or asked of the routers)")
	case "replay":
		r.replay.register(fs)
	case "reconcile":
		r.reconcile.register(fs)
	case "notifications":
		r.notify.register(fs)
	case "audit":
		fs.Uint64Var(&r.after, "after", 0, "list entries after this sequence number")
		fs.IntVar(&r.limit, "limit", 100, "list at most this many entries (1 to 1000)")
		fs.Func("witness", "with \"verify\": a router's snapshot file, or a head saved from \"audit head\", whose audit heads the log must hold (repeatable)", func(v string) error {
			r.witnesses = append(r.witnesses, v)
			return nil
		})
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: switchback %s [flags] %s\n\n%s\n\n", name, v.args, v.summary)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args, v.nargs, v.args)
	if err != nil {
		return err
	}
	r.args, r.json = pos, cf.json
	fs.Visit(func(f *flag.Flag) { r.set[f.Name] = true })
	c, err := cf.client(getenv)
	if err != nil {
		return err
	}
	return v.run(ctx, c, r)
}

// --- status

func status(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	ms, err := c.Migrations(ctx)
	if err != nil {
		return err
	}
	routers, err := c.Routers(ctx)
	if err != nil {
		return err
	}
	if r.json {
		return console.JSON(r.out, map[string]any{"migrations": ms, "routers": routers})
	}
	if len(ms) == 0 {
		fmt.Fprintln(r.out, "no migrations yet: create one with PUT /v1/migrations/{key}")
	} else {
		console.Migrations(r.out, ms)
	}
	console.Routers(r.out, routers)
	return nil
}

// --- gates

func gateVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	rep, err := c.Gate(ctx, r.args[0], r.args[1])
	if err != nil {
		return err
	}
	if r.json {
		if err := console.JSON(r.out, rep); err != nil {
			return err
		}
	} else {
		console.GateReport(r.out, rep)
	}
	switch {
	case rep.Pass:
		return nil
	case rep.Verdict == gate.Inconclusive:
		return errors.New("waiting for data: the gates cannot pass this cohort yet")
	default:
		return errors.New("the gates refuse to advance this cohort")
	}
}

func advance(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	res, refused, err := c.Advance(ctx, r.args[0], r.args[1], r.reason, r.force)
	if refused != nil {
		console.GateReport(r.out, *refused)
		fmt.Fprintln(r.out)
	}
	if err != nil {
		return err
	}
	if r.json {
		if res.Change != nil {
			return console.TerminalSafeJSON(r.out, res.Change)
		}
		return console.JSON(r.out, res)
	}
	if res.Change != nil {
		console.ChangeFiled(r.out, *res.Change)
		return nil
	}
	fmt.Fprintf(r.out, "cohort %s advanced from %s to %s: %s\n", res.Cohort, res.From, res.To, strings.Join(res.Partners, ", "))
	return nil
}

func stage(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	res, err := c.SetStage(ctx, r.args[0], r.args[1], r.args[2], r.reason, r.force)
	if err != nil {
		return err
	}
	if r.json {
		if res.Change != nil {
			return console.TerminalSafeJSON(r.out, res.Change)
		}
		return console.JSON(r.out, res)
	}
	if res.Change != nil {
		console.ChangeFiled(r.out, *res.Change)
		return nil
	}
	fmt.Fprintf(r.out, "partner %s is at %s in %s since %s\n", res.Partner, res.Stage, r.args[0], res.Since)
	return nil
}

// --- change requests

func changesVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	if len(r.args) > 1 {
		return usageError("name at most one change request")
	}
	if len(r.args) == 1 {
		if r.set["state"] || r.set["migration"] {
			return usageError("--state and --migration select what \"changes\" lists; with an ID it shows that one")
		}
		ch, err := c.ChangeRequest(ctx, r.args[0])
		if err != nil {
			return err
		}
		if r.json {
			return console.TerminalSafeJSON(r.out, ch)
		}
		console.ChangeRequest(r.out, ch)
		return nil
	}
	cs, err := c.Changes(ctx, r.state, r.migration)
	if err != nil {
		return err
	}
	if r.json {
		return console.TerminalSafeJSON(r.out, cs)
	}
	return console.Changes(r.out, cs)
}

func approveVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	ch, err := c.Approve(ctx, r.args[0], r.reason)
	if err != nil {
		return err
	}
	if r.json {
		if err := console.TerminalSafeJSON(r.out, ch); err != nil {
			return err
		}
	} else {
		console.ChangeRequest(r.out, ch)
	}
	if ch.State == domain.ChangeFailed {
		return fmt.Errorf("change request %s was approved but its move failed: %s", ch.ID, console.TerminalSafe(ch.Failure))
	}
	return nil
}

func rejectVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	if strings.TrimSpace(r.reason) == "" {
		return usageError("reject needs --reason: say why, for the requester and the audit log")
	}
	ch, err := c.Reject(ctx, r.args[0], r.reason)
	if err != nil {
		return err
	}
	if r.json {
		return console.TerminalSafeJSON(r.out, ch)
	}
	console.ChangeRequest(r.out, ch)
	return nil
}

// --- autopilot

const autopilotHelp = `Shows or switches the autopilot of a migration: inside its windows it advances the next cohort whenever its gates pass (docs/api.md, "Autopilot").
  status [MIGRATION]      what it does now and why; without MIGRATION, every migration's that has a policy
  off MIGRATION --reason  pauses it until someone turns it on again
  on MIGRATION            lets a paused autopilot move again (the guard and the kill switch pause it)
The policy itself (enabled, windows, maxAdvancesPerDay) is the migration's "autopilot" field: PUT /v1/migrations/{key}.`

func autopilotVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	if len(r.args) == 0 || len(r.args) > 2 {
		return usageError("say on, off or status, and the migration (status alone shows them all)")
	}
	var st wire.AutopilotStatus
	var err error
	switch r.args[0] {
	case "status":
		if len(r.args) == 1 {
			return autopilotStatuses(ctx, c, r)
		}
		st, err = c.Autopilot(ctx, r.args[1])
	case "on", "off":
		if len(r.args) != 2 {
			return usageError("name the migration: switchback autopilot " + r.args[0] + " MIGRATION")
		}
		if r.args[0] == "on" {
			st, err = c.ResumeAutopilot(ctx, r.args[1], r.reason)
			break
		}
		if strings.TrimSpace(r.reason) == "" {
			return usageError("autopilot off needs --reason: say why, for whoever finds it paused")
		}
		st, err = c.PauseAutopilot(ctx, r.args[1], r.reason)
	default:
		return usageError(fmt.Sprintf("%q: say on, off or status", r.args[0]))
	}
	if err != nil {
		return err
	}
	if r.json {
		return console.TerminalSafeJSON(r.out, st)
	}
	console.Autopilot(r.out, st)
	return nil
}

// autopilotStatuses shows the autopilot of every migration with a policy.
func autopilotStatuses(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	ms, err := c.Migrations(ctx)
	if err != nil {
		return err
	}
	var all []wire.AutopilotStatus
	for _, m := range ms {
		st, err := c.Autopilot(ctx, m.Key)
		if err != nil {
			return err
		}
		if st.Policy != nil {
			all = append(all, st)
		}
	}
	if r.json {
		return console.TerminalSafeJSON(r.out, all)
	}
	if len(all) == 0 {
		fmt.Fprintln(r.out, "no migration has an autopilot policy: add \"autopilot\" to one with PUT /v1/migrations/{key}")
	}
	for _, st := range all {
		console.Autopilot(r.out, st)
	}
	return nil
}

// --- kill switches

func revert(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	if r.all == (len(r.args) == 1) || len(r.args) > 1 {
		return usageError("name one migration, or pass --all to revert every migration")
	}
	migration, what := "", "every migration"
	if !r.all {
		migration, what = r.args[0], "migration "+r.args[0]
	}
	res, err := c.Revert(ctx, migration, r.reason, r.replayAfter)
	return killSwitchDone(r, res, err, what+" reverted: every partner evaluates to legacy")
}

func resume(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	res, err := c.Resume(ctx, r.args[0], r.reason)
	return killSwitchDone(r, res, err, "migration "+r.args[0]+" resumed: partners evaluate to their stages again")
}

func killSwitchDone(r *verbRun, res controlclient.KillSwitchAnswer, err error, done string) error {
	if err != nil {
		return err
	}
	if r.json {
		return console.JSON(r.out, res)
	}
	fmt.Fprintf(r.out, "%s (snapshot version %d)\n", done, res.SnapshotVersion)
	for _, line := range res.Replay {
		fmt.Fprintf(r.out, "replay through legacy started for %s: it awaits late comparisons; follow it with GET /v1/replays\n", line)
	}
	fmt.Fprintln(r.out, "run \"switchback status\" to see which routers hold the new version")
	return nil
}

// --- audit

func auditVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	if len(r.args) == 1 && r.args[0] == "verify" {
		v, err := c.VerifyAudit(ctx, r.witnesses)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "audit chain intact: %d entries verified, head %d hash %s\n", v.Entries, v.Seq, v.Hash)
		if len(r.witnesses) > 0 {
			fmt.Fprintf(r.out, "it holds all %d witnessed heads, from %d witness files\n", v.Witnessed, len(r.witnesses))
		}
		return nil
	}
	if len(r.args) == 1 && r.args[0] == "head" {
		// Saved somewhere the control service's host cannot write, the
		// head is a witness for "audit verify".
		head, err := c.AuditHead(ctx)
		if err != nil {
			return err
		}
		head.ExportedAt = time.Now().UTC()
		return console.JSON(r.out, head)
	}
	if len(r.witnesses) > 0 {
		return usageError("--witness goes with \"audit verify\"")
	}
	if len(r.args) != 0 {
		return usageError(fmt.Sprintf("unknown audit argument %q: use \"audit\", \"audit verify\" or \"audit head\"", r.args[0]))
	}
	entries, err := c.Audit(ctx, r.after, r.limit)
	if err != nil {
		return err
	}
	if r.json {
		return console.TerminalSafeJSON(r.out, entries)
	}
	return console.AuditEntries(r.out, entries)
}
