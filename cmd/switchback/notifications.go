package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/switchbackhq/switchback/internal/console"
	"github.com/switchbackhq/switchback/internal/controlclient"
)

// notificationsHelp is the notifications verb's summary in its usage.
const notificationsHelp = `Manages the notification targets, which hear the events they ask for as signed Standard
Webhooks or Slack messages (an admin token). Events: guard.revert, revert, resume, advance,
gate.refused, change.pending, autopilot.paused, router.stale, reconcile.gaps.

  switchback notifications                          the targets, with what this process delivered
  switchback notifications show NAME                one target and its last deliveries
  switchback notifications put NAME --url U --events a,b [--format standard|slack] [--secret-file F]
  switchback notifications delete NAME
  switchback notifications test NAME                send it a test notice; "show NAME" tells how it went

A standard target needs a secret: "whsec_" and the base64 of 24 to 64 random bytes, read from
--secret-file (make one with: printf 'whsec_%s' "$(openssl rand -base64 32)" > ops.secret),
never from the command line, where it would stay in the shell's history and the process list.
On a replace, --url and --secret-file may be left out to keep the target's; --events and
--format are set again (the format defaults to standard).`

// notificationsFlags are the notifications verb's own flags.
type notificationsFlags struct {
	url, events, format, secretFile string
}

func (f *notificationsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "with put: the http or https URL to post to (a Slack incoming webhook's for --format slack); left out, a replace keeps the target's")
	fs.StringVar(&f.events, "events", "", "with put: comma-separated events the target hears (required)")
	fs.StringVar(&f.format, "format", "", "with put: standard (signed Standard Webhooks, the default) or slack")
	fs.StringVar(&f.secretFile, "secret-file", "", "with put: file holding the whsec_… secret; left out, a replace keeps the target's")
}

// putFlags are the flags that only put takes.
var putFlags = []string{"url", "events", "format", "secret-file"}

func notificationsVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	sub := ""
	if len(r.args) > 0 {
		sub = r.args[0]
	}
	if sub != "put" {
		for _, name := range putFlags {
			if r.set[name] {
				return usageError(fmt.Sprintf("--%s goes with \"notifications put\"", name))
			}
		}
	}
	switch {
	case sub == "" || sub == "list" && len(r.args) == 1:
		list, err := c.Notifications(ctx)
		if err != nil {
			return err
		}
		if r.json {
			return console.TerminalSafeJSON(r.out, list)
		}
		if len(list) == 0 {
			fmt.Fprintln(r.out, "no notification target: add one with \"switchback notifications put NAME --url U --events guard.revert,revert --secret-file F\"")
			return nil
		}
		console.NotificationList(r.out, list)
		return nil
	case sub == "show" && len(r.args) == 2:
		st, err := c.Notification(ctx, r.args[1])
		if err != nil {
			return err
		}
		if r.json {
			return console.TerminalSafeJSON(r.out, st)
		}
		console.Notification(r.out, st)
		return nil
	case sub == "put" && len(r.args) == 2:
		in, err := r.notify.input(r.reason)
		if err != nil {
			return err
		}
		t, created, err := c.PutNotification(ctx, r.args[1], in)
		if err != nil {
			return err
		}
		if r.json {
			return console.TerminalSafeJSON(r.out, t)
		}
		verb := "replaced"
		if created {
			verb = "created"
		}
		fmt.Fprintf(r.out, "notification target %s %s: %s to %s for %s\n", console.TerminalSafe(t.Name), verb,
			console.TerminalSafe(t.Format), console.TerminalSafe(t.URL), console.TerminalSafe(strings.Join(t.Events, ", ")))
		return nil
	case sub == "delete" && len(r.args) == 2:
		if err := c.DeleteNotification(ctx, r.args[1], r.reason); err != nil {
			return err
		}
		fmt.Fprintf(r.out, "notification target %s deleted\n", console.TerminalSafe(r.args[1]))
		return nil
	case sub == "test" && len(r.args) == 2:
		id, err := c.TestNotification(ctx, r.args[1], r.reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "test notice %s queued for %s: \"switchback notifications show %s\" tells how it went\n",
			console.TerminalSafe(id), console.TerminalSafe(r.args[1]), console.TerminalSafe(r.args[1]))
		return nil
	}
	return usageError("use \"notifications\", \"notifications show NAME\", \"notifications put NAME --url U --events a,b\", \"notifications delete NAME\" or \"notifications test NAME\"")
}

// input is put's body: the events split, the secret read from its file.
func (f notificationsFlags) input(reason string) (controlclient.NotificationInput, error) {
	in := controlclient.NotificationInput{URL: f.url, Format: f.format, Reason: reason}
	for _, e := range strings.Split(f.events, ",") {
		if e = strings.TrimSpace(e); e != "" {
			in.Events = append(in.Events, e)
		}
	}
	if len(in.Events) == 0 {
		return in, usageError("notifications put needs --events, such as --events guard.revert,revert")
	}
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return in, fmt.Errorf("--secret-file: %w", err)
		}
		in.Secret = strings.TrimSpace(string(b))
		if in.Secret == "" {
			return in, usageError(fmt.Sprintf("--secret-file %s is empty", f.secretFile))
		}
	}
	return in, nil
}
