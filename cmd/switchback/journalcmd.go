package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/boltfile"
	"github.com/switchbackhq/switchback/internal/datadir"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstier"
	"github.com/switchbackhq/switchback/internal/psa"
)

// runJournal runs "switchback journal export", the rescue of a router's
// journal, damaged or not, as JSON lines, and "switchback journal copy".
func runJournal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "copy" {
		return runJournalCopy(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("journal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the router's data directory (holding journal.db), or serve's (holding ingress/journal.db)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback journal export --data DIR > events.jsonl
       switchback journal copy --from URL --to URL [flags]
         (see switchback journal copy -h)

export writes every event of the journal that can still be read to stdout,
one JSON object a line, in seq order, and says on stderr how many could not
be read. It reads a damaged journal page by page, skipping what is damaged,
and never writes to it. Stop the router (or serve) first: the file must not
be in use.

copy moves a router's journal into the NATS JetStream stream of a tier of
routers (bolt://DIR to nats://HOST:PORT[,…]), or the tier's journal back
into a new bbolt journal (nats://… to bolt://DIR), with each event's
outcome: what was applied or dead-lettered is not delivered again.

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

// copyBatch is how many events journal copy reads, publishes or writes at
// a time.
const copyBatch = 256

// runJournalCopy runs "switchback journal copy".
func runJournalCopy(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("journal copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the journal to copy: bolt://DIR or nats://HOST:PORT[,nats://HOST:PORT…] (tls:// for TLS)")
	to := fs.String("to", "", "where to copy it, the other kind: nats://… or bolt://DIR (a new journal)")
	replicas := fs.Int("journal-replicas", 0, "replicas of the NATS stream and outcome bucket if the copy creates them; 0 is 3")
	progress := fs.Int("progress", 10000, "say on stderr how far the copy is every this many events")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback journal copy --from bolt://DIR --to nats://HOST:PORT[,…] [flags]
       switchback journal copy --from nats://HOST:PORT[,…] --to bolt://DIR [flags]

Copies a journal between a router's bbolt file and the NATS JetStream
stream a tier of routers shares (switchback ingress --journal nats://…).
Each event keeps its id (the Idempotency-Key pipelines see), partner,
delivery id, receivedAt, entityUpdatedAt, headers and payload, and its
terminal outcome (applied or dead_lettered: state, pipeline, attempts,
error, doneAt). Replays, effects and shadow comparisons stay behind: replay
and compare before the copy, or keep the old journal to read them.

bolt://DIR to nats://… moves a router to the tier. DIR is the router's
--data (DIR/journal.db, or serve's DIR/ingress/journal.db); stop the router
first: the file is opened read-only, read whole (a damaged one is refused:
save it with "switchback journal export") and never written. Events are
published in the journal's order, so each entity's keep theirs, with their
id as Nats-Msg-Id. An event with an outcome has it written to the bucket
SWITCHBACK_OUTCOMES first, and the tier acknowledges it without delivering
it; the others are pending and the tier delivers them. An event the stream
holds already (copied before, or a resend a router of the tier took) is not
published again: running the copy again resumes it, and publishes nothing
twice.

nats://… to bolt://DIR goes back to one router, or keeps an archive: it reads
the stream from its first message to its last, each event with the outcome
the bucket holds, and writes a new journal, DIR/journal.db (refused if it
exists and is not empty; written as DIR/journal.db.copying and renamed once
whole). A router started on DIR delivers only the events without an outcome.
Stop the tier's routers first: an event one of them applied and had not yet
recorded is delivered again, with the same Idempotency-Key.

`)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		fs.Usage()
		return errUsage
	}
	if *replicas < 0 || *replicas > 5 {
		return usageError("switchback journal copy: --journal-replicas must be between 1 and 5 (JetStream's limit), or 0 for 3")
	}
	if *progress <= 0 {
		*progress = 10000
	}
	fromDir, fromBolt := strings.CutPrefix(*from, "bolt://")
	toDir, toBolt := strings.CutPrefix(*to, "bolt://")
	switch {
	case fromBolt && natsURLs(*to) && fromDir != "":
		return copyBoltToTier(ctx, fromDir, *to, *replicas, *progress, stderr)
	case toBolt && natsURLs(*from) && toDir != "":
		return copyTierToBolt(ctx, *from, toDir, *replicas, *progress, stderr)
	}
	return usageError(fmt.Sprintf("switchback journal copy: --from %s --to %s: one must be bolt://DIR, the other nats://HOST:PORT[,nats://HOST:PORT…]",
		safeURL(*from), safeURL(*to)))
}

// natsURLs reports whether u is a list of NATS servers, as --journal
// takes them.
func natsURLs(u string) bool {
	for p := range strings.SplitSeq(u, ",") {
		scheme, hostport, ok := strings.Cut(strings.TrimSpace(p), "://")
		if !ok || (scheme != "nats" && scheme != "tls") || hostport == "" {
			return false
		}
	}
	return true
}

// openCopyTier connects to the tier as "journal-copy", creating the
// stream, the bucket and the consumers if they are not there, and waiting
// up to a minute for a cluster that is electing its leaders.
func openCopyTier(ctx context.Context, urls string, replicas int, stderr io.Writer) (*natstier.Tier, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return natstier.Open(ctx, natstier.Options{URLs: urls, Name: "journal-copy", Replicas: replicas,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

// copyBoltToTier publishes the journal in dir into the tier.
func copyBoltToTier(ctx context.Context, dir, urls string, replicas, every int, stderr io.Writer) error {
	path, err := datadir.Journal(dir, journalFile)
	if err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	r, err := journal.OpenReader(path)
	switch {
	case errors.Is(err, journal.ErrLocked):
		return fmt.Errorf("journal copy: %w: stop the router (or serve) that uses it, then copy", err)
	case errors.Is(err, boltfile.ErrDamaged):
		return fmt.Errorf("journal copy: nothing was copied: %w", datadir.DamagedJournal(err, path, dir))
	case err != nil:
		return fmt.Errorf("journal copy: %w", err)
	}
	defer r.Close()
	total := r.Len()
	tier, err := openCopyTier(ctx, urls, replicas, stderr)
	if err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	defer tier.Close()
	c := tier.Copier()
	read := 0
	// Batches no longer than the progress's step, so that each step is said.
	size := min(copyBatch, every)
	batch := make([]journal.Event, 0, size)
	flush := func() error {
		if err := c.Copy(ctx, batch); err != nil {
			return err
		}
		before := read
		read += len(batch)
		batch = batch[:0]
		if read/every > before/every {
			s := c.Stats()
			fmt.Fprintf(stderr, "switchback journal copy: %d of %d events: %d published, %d already in the stream\n", read, total, s.Published, s.Duplicates)
		}
		return nil
	}
	err = r.Each(ctx, func(e journal.Event) error {
		if batch = append(batch, e); len(batch) == size {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	s := c.Stats()
	if err != nil {
		return fmt.Errorf("journal copy: %s → %s: %w\n  %d events were copied before it (%d published, %d already in the stream); run the same command again to resume:"+
			" what the stream holds is not published again", path, safeURL(urls), err, s.Published+s.Duplicates, s.Published, s.Duplicates)
	}
	fmt.Fprintf(stderr, "switchback journal copy: %s → %s: %d events: %d published (%d with their outcome, not delivered again; %d pending, which the tier delivers), %d already in the stream\n",
		path, safeURL(urls), read, s.Published, s.WithOutcome, s.Pending, s.Duplicates)
	return nil
}

// copyTierToBolt writes the tier's journal, with its outcomes, into a new
// journal in dir.
func copyTierToBolt(ctx context.Context, urls, dir string, replicas, every int, stderr io.Writer) (err error) {
	path := filepath.Join(dir, journalFile)
	if datadir.FileSize(path) > 0 {
		return fmt.Errorf("journal copy: %s exists and is not empty: the copy writes a new journal; move it aside or choose another directory", path)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	// Written aside and renamed once whole: a copy cut short leaves no
	// journal a router would start on.
	part := path + ".copying"
	if err := os.Remove(part); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal copy: %w", err)
	}
	tier, err := openCopyTier(ctx, urls, replicas, stderr)
	if err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	defer tier.Close()
	j, err := journal.Open(part, journal.Options{UpdatedAt: psa.UpdatedAt})
	if err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			j.Close()
		}
		if err != nil {
			os.Remove(part)
		}
	}()
	var read, written, done, dups int
	foreign, err := tier.ReadAll(ctx, func(batch []natstier.Recorded) error {
		events := make([]journal.Event, len(batch))
		for i, r := range batch {
			events[i] = r.Event
			if o := r.Outcome; o != nil && o.State.Terminal() {
				events[i].State, events[i].Pipeline, events[i].Attempts, events[i].LastError, events[i].DoneAt = o.State, o.Pipeline, o.Attempts, o.Error, o.At
			}
		}
		res, err := j.Import(ctx, events)
		if err != nil {
			return err
		}
		before := read
		read += len(batch)
		for i, a := range res {
			switch {
			case a.Duplicate:
				dups++
			case events[i].State.Terminal():
				written++
				done++
			default:
				written++
			}
		}
		if read/every > before/every {
			fmt.Fprintf(stderr, "switchback journal copy: %d events read, %d written\n", read, written)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal copy: %s → %s: %w; nothing was written to %s", safeURL(urls), path, err, path)
	}
	if read == 0 {
		return fmt.Errorf("journal copy: the stream %s on %s holds no events: nothing to copy", natstier.DefaultStream, safeURL(urls))
	}
	closed = true
	if err = j.Close(); err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	if err = os.Rename(part, path); err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("journal copy: %w", err)
	}
	fmt.Fprintf(stderr, "switchback journal copy: %s → %s: %d events written (%d with their outcome; %d pending, which a router started on %s delivers), %d duplicates of an event written already",
		safeURL(urls), path, written, done, written-done, dir, dups)
	if foreign > 0 {
		fmt.Fprintf(stderr, ", %d messages that are not switchback events passed over", foreign)
	}
	fmt.Fprintln(stderr)
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
