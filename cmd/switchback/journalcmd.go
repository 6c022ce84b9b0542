package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/switchbackhq/switchback/internal/datadir"
	"github.com/switchbackhq/switchback/internal/journal"
)

// runJournal runs "switchback journal export": the rescue of a router's
// journal, damaged or not, as JSON lines.
func runJournal(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("journal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the router's data directory (holding journal.db), or serve's (holding ingress/journal.db)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback journal export --data DIR > events.jsonl

Writes every event of the journal that can still be read to stdout, one JSON
object a line, in seq order, and says on stderr how many could not be read.
It reads a damaged journal page by page, skipping what is damaged, and never
writes to it. Stop the router (or serve) first: the file must not be in use.

`)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args, 1, "export")
	if err != nil {
		return err
	}
	if pos[0] != "export" || *data == "" {
		fs.Usage()
		return errUsage
	}
	path, err := datadir.Journal(*data, journalFile)
	if err != nil {
		return err
	}
	res, err := journal.Export(path, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "switchback journal export: %s: %d events written", path, res.Written)
	if res.Lost > 0 || res.Skipped > 0 {
		fmt.Fprintf(stderr, "; %d events lost to damage (named by the journal's indexes but unreadable), %d damaged stretches skipped", res.Lost, res.Skipped)
	}
	fmt.Fprintln(stderr)
	return nil
}
