package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// errUsage means the usage was printed already; exit 2 without more words.
var errUsage = errors.New("usage")

// usageError is a misuse worth a message; it exits 2 like errUsage.
type usageError string

func (e usageError) Error() string        { return string(e) }
func (e usageError) Is(target error) bool { return target == errUsage }

const usage = `switchback moves partners from an old webhook pipeline to a new one, a cohort
at a time, with gates on shadow results and a one-step revert.

Usage: switchback COMMAND [flags] [args]

Server:
  serve                          run the control service (bbolt in --data) with an ingress router
  ingress --control URL          run an ingress router alone
  demo                           the incident, reproduced and caught, on this machine
  simulate --router URL ...      realistic signed PSA webhook traffic, with a ledger
  pipeline --kind legacy|new     a reference pipeline with injectable faults
  journal export --data DIR      a router's journal as JSON lines, what can be read of a damaged one
  journal copy --from A --to B   a router's journal into a tier's NATS stream, or back: bolt://DIR ⇄ nats://HOST:PORT[,…]
  store copy --from A --to B     copy the control store whole: bolt://DIR ⇄ etcd://HOST:PORT[,…]
  store reseal --store etcd://…  seal partners' and notification targets' secrets with the first key of --secrets-key-file

Release engineering (talk to --server with $SWITCHBACK_TOKEN):
  status                         migrations, partners by stage, cohorts, kill switches
  gate MIGRATION COHORT          the gate report for advancing a cohort now
  advance MIGRATION COHORT       move a cohort one stage forward if its gates pass (or file a
                                 change request, where the migration requires approvals)
  stage MIGRATION PARTNER STAGE  set one partner's stage (legacy, shadow, new, done)
  changes [ID] [--state S]       change requests that wait for approvals (or ended), or one in full
  approve ID [--reason R]        approve a change request; the last approval makes the move
  reject ID --reason R           reject a change request
  autopilot status|on|off [MIGRATION]
                                 what the autopilot does and waits for; "off M --reason R" pauses
                                 it, "on M" lets it move again
  revert MIGRATION | --all       kill switch on: every partner back to legacy
  resume MIGRATION               kill switch off: stages as they were
  audit                          the audit log; "audit verify [--witness FILE]..." checks its hash
                                 chain (and against routers' snapshot files or saved heads);
                                 "audit head" prints the head to keep as a witness
  replay --migration M ...       send journaled events again through a pipeline, with progress
  reconcile --partners P --from 2h [--backfill]
                                 hold what each PSA changed against what was applied, list the
                                 gaps and backfill them; "reconcile show|backfill ID", "reconcile list"
  notifications [show|put|delete|test NAME]
                                 the notification targets and their deliveries (admin); "put NAME
                                 --url U --events a,b [--format slack] [--secret-file F]"

Measurement:
  bench ofrep|propagation        load the OFREP endpoints; time a revert's propagation
                                 (--processes N: the providers in processes of their own)
  bench ingress|replay           durable acknowledgements and replay throughput of a router
                                 (--separate: each part in its own process, its CPU from /proc)

Run "switchback COMMAND -h" for a command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "ingress":
		return runIngress(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return runDemoCmd(ctx, rest, getenv, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, getenv, stdout, stderr)
	case "pipeline":
		return runPipeline(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, getenv, stdout, stderr)
	case "journal":
		return runJournal(ctx, rest, stdout, stderr)
	case "store":
		return runStore(ctx, rest, getenv, stdout, stderr)
	case "status", "gate", "advance", "stage", "revert", "resume", "audit", "replay", "reconcile", "changes", "approve", "reject", "autopilot", "notifications":
		return runCLI(ctx, cmd, rest, getenv, stdout, stderr)
	}
	fmt.Fprintf(stderr, "switchback: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// exitCode is 2 for usage errors and 1 for the rest.
func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// parseFlags parses fs, printing its usage on error, and reports the
// positional arguments; want is their expected count (-1 for any).
func parseFlags(fs *flag.FlagSet, args []string, want int, names string) ([]string, error) {
	// Go's flag package stops at the first positional argument; move flags
	// after positionals to the front so "revert m --reason x" works.
	var flagsFirst, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flagsFirst = append(flagsFirst, a)
			name := strings.TrimLeft(a, "-")
			if f := fs.Lookup(name); f != nil && !strings.Contains(a, "=") && !isBool(f) && i+1 < len(args) {
				i++
				flagsFirst = append(flagsFirst, args[i])
			}
			continue
		}
		positional = append(positional, a)
	}
	if err := fs.Parse(flagsFirst); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	positional = append(positional, fs.Args()...)
	if want >= 0 && len(positional) != want {
		fmt.Fprintf(fs.Output(), "switchback %s: want %s\n", fs.Name(), names)
		fs.Usage()
		return nil, errUsage
	}
	return positional, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
