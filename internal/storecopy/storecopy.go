// Package storecopy copies a control store whole into an empty one, from
// bbolt to etcd or back (switchback store copy): partners with their
// secrets, migrations, stages, cohorts, tokens, change requests, notification targets
// with their secrets, the snapshot version, the
// audit log entry for entry (seqs and hashes unchanged, so the chain still
// verifies), the statistics rows, mismatches and applied report marks, and
// last the store's identity, so that routers and witnesses see the copy as
// the same store.
package storecopy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Each Update of the copy holds at most batchOps writes of about
// batchBytes in all: under etcd's default 128 operations and 1.5 MiB a
// transaction, with room for what a write costs beside its value (a
// compare, a key).
const (
	batchOps   = 100
	batchBytes = 512 << 10
	auditPage  = 500
)

// ErrNotEmpty is wrapped by Copy's error when the destination holds data.
var ErrNotEmpty = errors.New("the destination store is not empty")

// Counts is what Copy copied.
type Counts struct {
	Partners, Migrations, Stages, Cohorts, Tokens int
	Changes                                       int // change requests
	Notifiers                                     int // notification targets
	Audit                                         int // entries
	Rows                                          int // statistics rows, mismatches and applied report marks
}

// Copy copies everything in from into to, which must be empty (nothing
// but its identity), in Updates that fit etcd's default limits, and writes
// a line of counts to progress (if not nil) as each part is done. It only
// reads from. Nothing must write to from meanwhile (stop switchback serve):
// Copy returns an error when it sees the source change.
//
// It returns an error wrapping ErrNotEmpty for a destination with data,
// an *audit.Break when the source's audit chain does not verify (a copy
// would carry the break), an error when a migration's stages do not fit in
// one transaction of to (etcd's request size; see package etcdstore), or
// the stores' errors. A copy that fails part way leaves to partly written
// and with its own identity: empty it (or remove the file) and copy again.
func Copy(ctx context.Context, from, to control.Copyable, progress io.Writer) (Counts, error) {
	var n Counts
	if err := checkEmpty(ctx, to); err != nil {
		return n, err
	}
	d, err := from.Load(ctx)
	if err != nil {
		return n, fmt.Errorf("read the source: %w", err)
	}
	say := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, "store copy: "+format+"\n", args...)
		}
	}
	b := &batch{ctx: ctx, to: to}

	for _, p := range d.Partners {
		b.add(size(p), func(tx control.Tx) error { return tx.PutPartner(p) })
	}
	for _, m := range d.Migrations {
		b.add(size(m), func(tx control.Tx) error { return tx.PutMigration(m) })
	}
	for key, cs := range d.Cohorts {
		for _, c := range cs {
			b.add(size(c), func(tx control.Tx) error { return tx.PutCohort(key, c) })
			n.Cohorts++
		}
	}
	for _, tok := range d.Tokens {
		b.add(size(tok), func(tx control.Tx) error { return tx.PutToken(tok) })
	}
	for _, c := range d.Changes {
		b.add(size(c), func(tx control.Tx) error { return tx.PutChange(c) })
	}
	for _, nt := range d.Notifiers {
		b.add(size(nt), func(tx control.Tx) error { return tx.PutNotifier(nt) })
	}
	if err := b.flush(); err != nil {
		return n, err
	}
	n.Partners, n.Migrations, n.Tokens, n.Changes, n.Notifiers = len(d.Partners), len(d.Migrations), len(d.Tokens), len(d.Changes), len(d.Notifiers)
	say("%d partners, %d migrations, %d cohorts, %d tokens, %d change requests, %d notification targets", n.Partners, n.Migrations, n.Cohorts, n.Tokens, n.Changes, n.Notifiers)

	// A migration's stages go in one Update: in etcd they share a few
	// keys (see package etcdstore), which splitting would rewrite again
	// for every part.
	for key, sts := range d.Stages {
		err := to.Update(ctx, func(tx control.Tx) error {
			for _, ps := range sts {
				if err := tx.PutStage(key, ps); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("write the %d stages of migration %s: %w", len(sts), key, err)
		}
		n.Stages += len(sts)
	}
	say("%d stages", n.Stages)

	v := audit.NewVerifier(domain.AuditEntry{})
	var last domain.AuditEntry
	for {
		page, err := from.AuditLog(ctx, last.Seq, auditPage)
		if err != nil {
			return n, fmt.Errorf("read the source's audit log after seq %d: %w", last.Seq, err)
		}
		if len(page) == 0 {
			break
		}
		if err := v.Check(page); err != nil {
			return n, fmt.Errorf("the source's audit log does not verify (run switchback audit verify on it): %w", err)
		}
		for _, e := range page {
			b.add(size(e), func(tx control.Tx) error { return tx.AppendAudit(e) })
		}
		if err := b.flush(); err != nil {
			return n, err
		}
		last = page[len(page)-1]
		n.Audit += len(page)
		if n.Audit%10000 < auditPage {
			say("%d audit entries", n.Audit)
		}
	}
	if last.Seq != d.LastAudit.Seq || last.Hash != d.LastAudit.Hash {
		return n, fmt.Errorf("the source's audit head moved from seq %d to %d during the copy: stop what writes to it (switchback serve) and copy again", d.LastAudit.Seq, last.Seq)
	}
	say("%d audit entries, the chain verified", n.Audit)

	err = from.Export(ctx, func(r control.Row) error {
		b.add(size(r), r.Put)
		n.Rows++
		if b.err == nil && n.Rows%10000 == 0 {
			say("%d statistics rows", n.Rows)
		}
		return b.err
	})
	if err == nil {
		err = b.flush()
	}
	if err != nil {
		return n, fmt.Errorf("copy statistics: %w", err)
	}
	say("%d statistics rows, mismatches and applied reports", n.Rows)

	// Last, so that a copy that failed part way does not pass for the
	// source.
	if err := to.Update(ctx, func(tx control.Tx) error { return tx.SetVersion(d.Version) }); err != nil {
		return n, fmt.Errorf("write the snapshot version: %w", err)
	}
	if err := to.SetStoreID(ctx, d.StoreID); err != nil {
		return n, err
	}
	return n, nil
}

// errHasRows stops checkEmpty's Export at the first row.
var errHasRows = errors.New("has rows")

func checkEmpty(ctx context.Context, s control.Copyable) error {
	d, err := s.Load(ctx)
	if err != nil {
		return fmt.Errorf("read the destination: %w", err)
	}
	if len(d.Partners)+len(d.Migrations)+len(d.Tokens)+len(d.Changes)+len(d.Notifiers) > 0 || d.Version > 0 || d.LastAudit.Seq > 0 {
		return fmt.Errorf("%w: it holds %d partners, %d migrations, %d tokens, %d change requests, %d notification targets, %d audit entries at version %d; copy into a new one",
			ErrNotEmpty, len(d.Partners), len(d.Migrations), len(d.Tokens), len(d.Changes), len(d.Notifiers), d.LastAudit.Seq, d.Version)
	}
	err = s.Export(ctx, func(control.Row) error { return errHasRows })
	if errors.Is(err, errHasRows) {
		return fmt.Errorf("%w: it holds statistics rows; copy into a new one", ErrNotEmpty)
	}
	if err != nil {
		return fmt.Errorf("read the destination: %w", err)
	}
	return nil
}

// batch gathers writes into Updates of at most batchOps writes and about
// batchBytes. Its first error sticks: later adds do nothing, and flush
// returns it.
type batch struct {
	ctx   context.Context
	to    control.Store
	fns   []func(control.Tx) error
	bytes int
	err   error
}

func (b *batch) add(n int, fn func(control.Tx) error) {
	if b.err != nil {
		return
	}
	if len(b.fns) == batchOps || (len(b.fns) > 0 && b.bytes+n > batchBytes) {
		if b.flush() != nil {
			return
		}
	}
	b.fns = append(b.fns, fn)
	b.bytes += n
}

func (b *batch) flush() error {
	if b.err != nil || len(b.fns) == 0 {
		return b.err
	}
	fns := b.fns
	b.fns, b.bytes = nil, 0
	b.err = b.to.Update(b.ctx, func(tx control.Tx) error {
		for _, fn := range fns {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if b.err != nil {
		b.err = fmt.Errorf("write to the destination: %w", b.err)
	}
	return b.err
}

// size is about what v costs in a request: its JSON.
func size(v any) int {
	data, err := json.Marshal(v)
	if err != nil {
		return batchBytes // counted as a batch of its own
	}
	return len(data) + 64
}
