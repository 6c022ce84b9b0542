package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/client"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
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

func (f *cliFlags) client(getenv func(string) string) (*client.Client, error) {
	token := strings.TrimSpace(getenv("SWITCHBACK_TOKEN"))
	if token == "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("no token: set SWITCHBACK_TOKEN or pass --token-file (%v)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return client.New(f.server, token), nil
}

// verb describes one CLI verb.
type verb struct {
	args    string // positional arguments, for usage
	nargs   int    // -1 for any
	summary string
	run     func(ctx context.Context, c *client.Client, v *verbRun) error
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
	replay replayFlags
	// replayAfter asks a revert to replay the mismatched events.
	replayAfter bool
	// witnesses are the files "audit verify" checks the log against.
	witnesses []string
}

var verbs = map[string]verb{
	"status":  {"", 0, "Shows migrations, partners by stage, cohorts and kill switches.", status},
	"gate":    {"MIGRATION COHORT", 2, "Shows the gate report for advancing a cohort now; exits 1 when the gates refuse.", gateVerb},
	"advance": {"MIGRATION COHORT", 2, "Moves the cohort's partners at its lowest stage one stage forward, if the gates pass for each.", advance},
	"stage":   {"MIGRATION PARTNER STAGE", 3, "Sets one partner's stage. Forward moves go one step and pass the gates unless --force.", stage},
	"revert":  {"MIGRATION | --all", -1, "Turns the kill switch on: every partner of the migration (or of all, with --all) evaluates to legacy.", revert},
	"resume":  {"MIGRATION", 1, "Turns the kill switch off: partners evaluate to their stages as they were.", resume},
	"audit":   {"[verify | head]", -1, "Lists the audit log; \"audit verify\" recomputes its hash chain and says where it breaks, and with --witness checks that the log still holds the heads routers saw (their snapshot files) or \"audit head\" exported; \"audit head\" prints the log's head as JSON, to keep elsewhere as a witness.", auditVerb},
	"replay":  {"", 0, "Sends a window of journaled events again through a pipeline, with their original ids, and follows its progress.", replayVerb},
}

func runCLI(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	v := verbs[name]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf cliFlags
	cf.register(fs, getenv)
	r := &verbRun{out: stdout}
	switch name {
	case "advance", "stage", "revert", "resume", "replay":
		fs.StringVar(&r.reason, "reason", "", "why: written to the audit log")
	}
	switch name {
	case "advance", "stage":
		fs.BoolVar(&r.force, "force", false, "move even though the gates refuse (needs --reason)")
	case "revert":
		fs.BoolVar(&r.all, "all", false, "revert every migration in one snapshot version")
		fs.BoolVar(&r.replayAfter, "replay", false, "also replay through legacy what the new pipeline got wrong, late comparisons included (on serve's router, or asked of the routers)")
	case "replay":
		r.replay.register(fs)
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
	c, err := cf.client(getenv)
	if err != nil {
		return err
	}
	return v.run(ctx, c, r)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// --- status

type migrationStatus struct {
	Key             string               `json:"key"`
	Description     string               `json:"description"`
	Reverted        bool                 `json:"reverted"`
	Stages          map[domain.Stage]int `json:"stages"`
	SnapshotVersion uint64               `json:"snapshotVersion"`
	Cohorts         []cohortStatus       `json:"cohorts"`
}

type cohortStatus struct {
	Name     string       `json:"name"`
	Order    int          `json:"order"`
	Partners []string     `json:"partners"`
	Stage    domain.Stage `json:"stage"`
}

type routerStatus struct {
	ID              string    `json:"id"`
	LastSeen        time.Time `json:"lastSeen"`
	SnapshotVersion uint64    `json:"snapshotVersion"`
	Confirmed       bool      `json:"confirmed"`
}

func status(ctx context.Context, c *client.Client, r *verbRun) error {
	var ms []migrationStatus
	if err := c.Do(ctx, http.MethodGet, "/v1/migrations", nil, &ms); err != nil {
		return err
	}
	var routers []routerStatus
	if err := c.Do(ctx, http.MethodGet, "/v1/routers", nil, &routers); err != nil {
		return err
	}
	for i := range ms {
		if err := c.Do(ctx, http.MethodGet, client.Path("v1", "migrations", ms[i].Key, "cohorts"), nil, &ms[i].Cohorts); err != nil {
			return err
		}
	}
	if r.json {
		return printJSON(r.out, map[string]any{"migrations": ms, "routers": routers})
	}
	if len(ms) == 0 {
		fmt.Fprintln(r.out, "no migrations yet: create one with PUT /v1/migrations/{key}")
	} else {
		printMigrations(r.out, ms)
	}
	printRouters(r.out, routers)
	return nil
}

// printRouters shows which routers hold the current snapshot: after a
// revert, every line should say "yes".
func printRouters(w io.Writer, routers []routerStatus) {
	if len(routers) == 0 {
		fmt.Fprintln(w, "\nno router has reported yet")
		return
	}
	confirmed := 0
	for _, rt := range routers {
		if rt.Confirmed {
			confirmed++
		}
	}
	fmt.Fprintf(w, "\nrouters: %d of %d hold the current snapshot\n", confirmed, len(routers))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTER\tSNAPSHOT\tCURRENT\tLAST SEEN")
	for _, rt := range routers {
		cur := "no"
		if rt.Confirmed {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\n", rt.ID, rt.SnapshotVersion, cur, rt.LastSeen.Format(time.RFC3339))
	}
	tw.Flush()
}

func printMigrations(w io.Writer, ms []migrationStatus) {
	r := struct{ out io.Writer }{w}
	tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MIGRATION\tKILL SWITCH\tLEGACY\tSHADOW\tNEW\tDONE\tSNAPSHOT")
	for _, m := range ms {
		ks := "off"
		if m.Reverted {
			ks = "ON (all legacy)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\tv%d\n", m.Key, ks, m.Stages[domain.StageLegacy], m.Stages[domain.StageShadow],
			m.Stages[domain.StageNew], m.Stages[domain.StageDone], m.SnapshotVersion)
	}
	tw.Flush()
	for _, m := range ms {
		if len(m.Cohorts) == 0 {
			continue
		}
		fmt.Fprintf(r.out, "\ncohorts of %s:\n", m.Key)
		tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ORDER\tCOHORT\tSTAGE\tPARTNERS")
		for _, co := range m.Cohorts {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", co.Order, co.Name, co.Stage, strings.Join(co.Partners, ", "))
		}
		tw.Flush()
	}
}

// --- gates

func gateVerb(ctx context.Context, c *client.Client, r *verbRun) error {
	var rep gate.Report
	if err := c.Do(ctx, http.MethodGet, client.Path("v1", "migrations", r.args[0], "cohorts", r.args[1], "gate"), nil, &rep); err != nil {
		return err
	}
	if r.json {
		if err := printJSON(r.out, rep); err != nil {
			return err
		}
	} else {
		printReport(r.out, rep)
	}
	if !rep.Pass {
		return errors.New("the gates refuse to advance this cohort")
	}
	return nil
}

// printReport writes a gate report partner by partner, check by check.
func printReport(w io.Writer, rep gate.Report) {
	verdict := "PASS: the cohort may advance"
	if !rep.Pass {
		verdict = "REFUSED: the cohort may not advance"
	}
	fmt.Fprintln(w, verdict)
	for _, p := range rep.Partners {
		mark := "ok  "
		if !p.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "\n%s %s (at %s)\n", mark, p.Partner, p.Stage)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, ch := range p.Checks {
			m := "ok"
			if !ch.Pass {
				m = "FAIL"
			}
			fmt.Fprintf(tw, "  %s\t%s\tvalue %s\tlimit %s\t%s\n", m, ch.Name, num(ch.Value), num(ch.Limit), ch.Detail)
		}
		tw.Flush()
	}
}

func num(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.4g", f)
}

func advance(ctx context.Context, c *client.Client, r *verbRun) error {
	var res struct {
		Cohort   string   `json:"cohort"`
		From     string   `json:"from"`
		To       string   `json:"to"`
		Partners []string `json:"partners"`
	}
	body := map[string]any{"reason": r.reason, "force": r.force}
	err := c.Do(ctx, http.MethodPost, client.Path("v1", "migrations", r.args[0], "cohorts", r.args[1], "advance"), body, &res)
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Code == domain.CodeGateRefused && len(apiErr.Gate) > 0 {
		var rep gate.Report
		if json.Unmarshal(apiErr.Gate, &rep) == nil {
			printReport(r.out, rep)
			fmt.Fprintln(r.out)
		}
		return err
	}
	if err != nil {
		return err
	}
	if r.json {
		return printJSON(r.out, res)
	}
	fmt.Fprintf(r.out, "cohort %s advanced from %s to %s: %s\n", res.Cohort, res.From, res.To, strings.Join(res.Partners, ", "))
	return nil
}

func stage(ctx context.Context, c *client.Client, r *verbRun) error {
	var res struct {
		Partner string `json:"partner"`
		Stage   string `json:"stage"`
		Since   string `json:"since"`
	}
	body := map[string]any{"stage": r.args[2], "reason": r.reason, "force": r.force}
	if err := c.Do(ctx, http.MethodPut, client.Path("v1", "migrations", r.args[0], "partners", r.args[1]), body, &res); err != nil {
		return err
	}
	if r.json {
		return printJSON(r.out, res)
	}
	fmt.Fprintf(r.out, "partner %s is at %s in %s since %s\n", res.Partner, res.Stage, r.args[0], res.Since)
	return nil
}

// --- kill switches

func revert(ctx context.Context, c *client.Client, r *verbRun) error {
	if r.all == (len(r.args) == 1) || len(r.args) > 1 {
		return usageError("name one migration, or pass --all to revert every migration")
	}
	path, what := "/v1/revert", "every migration"
	if !r.all {
		path, what = client.Path("v1", "migrations", r.args[0], "revert"), "migration "+r.args[0]
	}
	return killSwitch(ctx, c, r, path, what+" reverted: every partner evaluates to legacy")
}

type killSwitchAnswer struct {
	SnapshotVersion uint64   `json:"snapshotVersion"`
	Replay          []string `json:"replay,omitempty"`
}

func resume(ctx context.Context, c *client.Client, r *verbRun) error {
	return killSwitch(ctx, c, r, client.Path("v1", "migrations", r.args[0], "resume"),
		"migration "+r.args[0]+" resumed: partners evaluate to their stages again")
}

func killSwitch(ctx context.Context, c *client.Client, r *verbRun, path, done string) error {
	var res killSwitchAnswer
	body := map[string]any{"reason": r.reason}
	if r.replayAfter {
		body["replay"] = true
	}
	if err := c.Do(ctx, http.MethodPost, path, body, &res); err != nil {
		return err
	}
	if r.json {
		return printJSON(r.out, res)
	}
	fmt.Fprintf(r.out, "%s (snapshot version %d)\n", done, res.SnapshotVersion)
	for _, line := range res.Replay {
		fmt.Fprintf(r.out, "replay through legacy started for %s: it awaits late comparisons; follow it with GET /v1/replays\n", line)
	}
	fmt.Fprintln(r.out, "run \"switchback status\" to see which routers hold the new version")
	return nil
}

// --- audit

func auditVerb(ctx context.Context, c *client.Client, r *verbRun) error {
	if len(r.args) == 1 && r.args[0] == "verify" {
		return auditVerify(ctx, c, r)
	}
	if len(r.args) == 1 && r.args[0] == "head" {
		return auditHead(ctx, c, r)
	}
	if len(r.witnesses) > 0 {
		return usageError("--witness goes with \"audit verify\"")
	}
	if len(r.args) != 0 {
		return usageError(fmt.Sprintf("unknown audit argument %q: use \"audit\", \"audit verify\" or \"audit head\"", r.args[0]))
	}
	var entries []domain.AuditEntry
	if err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/audit?after=%d&limit=%d", r.after, r.limit), nil, &entries); err != nil {
		return err
	}
	if r.json {
		return printTerminalSafeJSON(r.out, entries)
	}
	tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tACTION\tTARGET\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format("2006-01-02 15:04:05Z"),
			terminalSafe(e.Actor), terminalSafe(e.Action), terminalSafe(e.Target), terminalSafe(e.Reason))
	}
	return tw.Flush()
}

// auditVerify pages through the whole log and checks its chain, and that
// it holds every witnessed head.
func auditVerify(ctx context.Context, c *client.Client, r *verbRun) error {
	v := audit.NewVerifier(domain.AuditEntry{})
	witnessed := 0
	if len(r.witnesses) > 0 {
		var head auditHeadJSON
		if err := c.Do(ctx, http.MethodGet, "/v1/audit/head", nil, &head); err != nil {
			return err
		}
		for _, path := range r.witnesses {
			ws, err := readWitnesses(path, head.StoreID)
			if err != nil {
				return err
			}
			v.Expect(ws...)
			witnessed += len(ws)
		}
	}
	var after uint64
	var head string
	for {
		var page []domain.AuditEntry
		if err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/audit?after=%d&limit=1000", after), nil, &page); err != nil {
			return err
		}
		if err := v.Check(page); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		after, head = page[len(page)-1].Seq, page[len(page)-1].Hash
	}
	if err := v.Finish(); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "audit chain intact: %d entries verified, head %d hash %s\n", v.Checked, after, head)
	if len(r.witnesses) > 0 {
		fmt.Fprintf(r.out, "it holds all %d witnessed heads, from %d witness files\n", witnessed, len(r.witnesses))
	}
	return nil
}

// auditHeadJSON is GET /v1/audit/head, and what "audit head" prints.
type auditHeadJSON struct {
	StoreID         string    `json:"storeId"`
	Seq             uint64    `json:"seq"`
	Hash            string    `json:"hash"`
	SnapshotVersion uint64    `json:"snapshotVersion"`
	ExportedAt      time.Time `json:"exportedAt,omitzero"`
}

// auditHead prints the log's head as JSON: saved somewhere the control
// service's host cannot write, it is a witness for "audit verify".
func auditHead(ctx context.Context, c *client.Client, r *verbRun) error {
	var head auditHeadJSON
	if err := c.Do(ctx, http.MethodGet, "/v1/audit/head", nil, &head); err != nil {
		return err
	}
	head.ExportedAt = time.Now().UTC()
	return printJSON(r.out, head)
}

// readWitnesses reads the audit heads of a witness file: a router's
// snapshot file, or a head printed by "audit head". Heads of another store
// than storeID are an error: that store's log is not the one verified (a
// store reset or replaced cannot pass for the one the witness saw).
func readWitnesses(path, storeID string) ([]audit.Witness, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	var probe struct {
		Schema int `json:"schema"`
		auditHeadJSON
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("witness %s is neither a router's snapshot file nor a head from \"audit head\": %w", path, err)
	}
	var heads []flags.AuditHead
	switch {
	case probe.Schema != 0:
		if heads, err = flags.ReadAuditHeads(path); err != nil {
			return nil, fmt.Errorf("witness: %w", err)
		}
	case probe.Seq > 0 && probe.Hash != "":
		heads = []flags.AuditHead{{StoreID: probe.StoreID, Seq: probe.Seq, Hash: probe.Hash}}
	default:
		return nil, fmt.Errorf("witness %s is neither a router's snapshot file nor a head from \"audit head\"", path)
	}
	ws := make([]audit.Witness, 0, len(heads))
	for _, h := range heads {
		if h.StoreID != "" && h.StoreID != storeID {
			return nil, fmt.Errorf("witness %s saw audit entry %d of store %s, but the control service's store is %s: it was replaced or reset since",
				path, h.Seq, h.StoreID, storeID)
		}
		ws = append(ws, audit.Witness{Seq: h.Seq, Hash: h.Hash, Source: path})
	}
	return ws, nil
}
