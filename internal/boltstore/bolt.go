// Package bolt stores the control service's data in one bbolt file.
//
// Bucket layout (schema 2), every bucket created at Open:
//
//	meta        "schema" → decimal schema version; "version" → 8-byte big-endian snapshot version;
//	            "storeId" → the store's identity, 32 random hex digits set when the file is
//	            created (or first opened by a switchback that knows it); a copy keeps it
//	partners    partner id → JSON domain.Partner
//	migrations  migration key → JSON domain.Migration
//	stages      migration key → bucket: partner id → JSON domain.PartnerStage
//	cohorts     migration key → bucket: cohort name → JSON domain.Cohort
//	tokens      token name → JSON domain.Token (the secret's SHA-256 only)
//	audit       8-byte big-endian seq → JSON domain.AuditEntry
//	stats       stint 0 event type 0 class 0 minute(8) → 8-byte count
//	candidate   stint → 8-byte calls, 8-byte errors of the new pipeline
//	mismatches  migration 0 partner 0 event type 0 class 0 at(8) event id → JSON domain.Mismatch
//	reports     router id 0 journal epoch → 8-byte seq of the last report applied
//	noise       migration 0 partner 0 event type → JSON object field path → count: what
//	            routers saw differ between two legacy runs (created at the first write, so
//	            that files of schema 2 written before it need no upgrade; absent reads empty)
//	changes     change request id → JSON domain.ChangeRequest (created at Open when missing,
//	            so that files of schema 2 written before it need no upgrade; a file opened
//	            read-only without it reads none)
//	notifiers   notification target name → JSON domain.Notifier (created by Open, and at
//	            the first write, in files of schema 2 written before it; absent reads empty)
//
// A stint is a partner's time in a stage, named by
// migration 0 partner 0 stage 0 since(8), since being when it began. Times
// (8) are big-endian Unix nanoseconds, so that keys sort by time; numbers
// are big-endian uint64.
//
// Schema 1 kept the candidate's calls and errors in stats under the
// pseudo-classes "~calls" and "~errors" with an empty event type; Open
// moves them to candidate (see upgrade).
//
// Transaction rules: only View and Update; values are decoded before the
// transaction ends (bbolt's byte slices die with it); transactions never
// nest and never wait on the network.
package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/switchbackhq/switchback/internal/boltfile"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// SchemaVersion is the layout this package reads and writes.
const SchemaVersion = 2

var (
	bucketMeta       = []byte("meta")
	bucketPartners   = []byte("partners")
	bucketMigrations = []byte("migrations")
	bucketStages     = []byte("stages")
	bucketCohorts    = []byte("cohorts")
	bucketTokens     = []byte("tokens")
	bucketAudit      = []byte("audit")
	bucketStats      = []byte("stats")
	bucketCandidate  = []byte("candidate")
	bucketMismatches = []byte("mismatches")
	bucketReports    = []byte("reports")
	bucketNoise      = []byte("noise")
	bucketChanges    = []byte("changes")

	keySchema  = []byte("schema")
	keyVersion = []byte("version")
	keyStoreID = []byte("storeId")
)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("the data file is in use by another process (is another switchback serve running on this data dir?)")

// ErrNewerSchema is returned by Open for a file written by a newer switchback.
var ErrNewerSchema = errors.New("the data file was written by a newer switchback")

// Store is a control.Store on a bbolt file.
type Store struct {
	db *bbolt.DB
}

var (
	_ control.Store = (*Store)(nil)
	_ control.Tx    = (*tx)(nil)
)

// Open opens or creates the file at path, and upgrades a file of an older
// schema in one transaction. It waits at most timeout for another
// process to release the file and then returns ErrLocked; it returns
// ErrNewerSchema for a file of a newer schema. It reads
// the whole file before it returns: a damaged file returns an error
// wrapping boltfile.ErrDamaged.
func Open(path string, timeout time.Duration) (*Store, error) {
	db, err := boltfile.Open(path, &bbolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// OpenReadOnly opens the existing file at path for reading only, as
// Open does but writing nothing to it: Update then fails. It waits at most
// timeout for a process writing the file (a running serve) to release it
// and then returns ErrLocked; it returns an error wrapping os.ErrNotExist
// for a missing file, ErrNewerSchema for a file of a newer schema, and an
// error for one of an older schema or without the buckets of a store
// (upgrading is a write: open it once with Open).
func OpenReadOnly(path string, timeout time.Duration) (*Store, error) {
	db, err := boltfile.Open(path, &bbolt.Options{Timeout: timeout, ReadOnly: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketPartners, bucketMigrations, bucketStages, bucketCohorts, bucketTokens, bucketAudit,
			bucketStats, bucketCandidate, bucketMismatches, bucketReports} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("no %s bucket: not a switchback control database", b)
			}
		}
		v := tx.Bucket(bucketMeta).Get(keySchema)
		n, err := strconv.Atoi(string(v))
		switch {
		case err != nil:
			return fmt.Errorf("schema version %q is unreadable", v)
		case n > SchemaVersion:
			return fmt.Errorf("%w (schema %d; this one reads %d)", ErrNewerSchema, n, SchemaVersion)
		case n < SchemaVersion:
			return fmt.Errorf("schema %d is older than this switchback's (%d): open it once with switchback serve to upgrade it", n, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

func initSchema(tx *bbolt.Tx) error {
	for _, b := range [][]byte{bucketMeta, bucketPartners, bucketMigrations, bucketStages, bucketCohorts, bucketTokens, bucketAudit,
		bucketStats, bucketCandidate, bucketMismatches, bucketReports, bucketChanges, bucketNotifiers} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyStoreID) == nil {
		var id [16]byte
		rand.Read(id[:])
		if err := meta.Put(keyStoreID, []byte(hex.EncodeToString(id[:]))); err != nil {
			return err
		}
	}
	v := meta.Get(keySchema)
	if v == nil {
		return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return fmt.Errorf("schema version %q is unreadable", v)
	}
	if n > SchemaVersion {
		return fmt.Errorf("%w (schema %d; this one reads %d)", ErrNewerSchema, n, SchemaVersion)
	}
	if n < SchemaVersion {
		if err := upgrade(tx, n); err != nil {
			return fmt.Errorf("upgrade schema %d to %d: %w", n, SchemaVersion, err)
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	}
	return nil
}

// upgrade rewrites a file of schema from to the current layout, in the
// transaction that opens it: a file is upgraded whole or not at all.
func upgrade(tx *bbolt.Tx, from int) error {
	if from < 2 {
		return moveCandidateRows(tx)
	}
	return nil
}

// moveCandidateRows moves schema 1's candidate rows, keyed
// stint 0 0 "~calls" 0 and eight zero bytes (likewise "~errors"), out of
// stats into candidate.
func moveCandidateRows(tx *bbolt.Tx) error {
	stats, cand := tx.Bucket(bucketStats), tx.Bucket(bucketCandidate)
	zero := u64(0)
	calls := join(nil, nil, []byte("~calls"), zero)
	errs := join(nil, nil, []byte("~errors"), zero)
	var moved [][]byte
	err := stats.ForEach(func(k, v []byte) error {
		var field int
		var key []byte
		switch {
		case bytes.HasSuffix(k, calls):
			key = k[:len(k)-len(calls)]
		case bytes.HasSuffix(k, errs):
			key, field = k[:len(k)-len(errs)], 1
		default:
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("stats row %q: value of %d bytes", k, len(v))
		}
		row := make([]byte, 16)
		copy(row, cand.Get(key))
		copy(row[8*field:], v)
		moved = append(moved, append([]byte(nil), k...))
		return cand.Put(append([]byte(nil), key...), row)
	})
	if err != nil {
		return err
	}
	for _, k := range moved {
		if err := stats.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the underlying database, for consistency checks in tests.
func (s *Store) DB() *bbolt.DB { return s.db }

// Load returns everything stored.
func (s *Store) Load(ctx context.Context) (domain.Data, error) {
	d := domain.Data{Stages: map[string][]domain.PartnerStage{}, Cohorts: map[string][]domain.Cohort{}}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyVersion); len(v) == 8 {
			d.Version = binary.BigEndian.Uint64(v)
		}
		d.StoreID = string(tx.Bucket(bucketMeta).Get(keyStoreID))
		if err := each(tx.Bucket(bucketPartners), &d.Partners); err != nil {
			return err
		}
		if err := each(tx.Bucket(bucketMigrations), &d.Migrations); err != nil {
			return err
		}
		if err := each(tx.Bucket(bucketTokens), &d.Tokens); err != nil {
			return err
		}
		if err := each(tx.Bucket(bucketChanges), &d.Changes); err != nil {
			return err
		}
		if err := loadNotifiers(tx, &d.Notifiers); err != nil {
			return err
		}
		for _, m := range d.Migrations {
			var st []domain.PartnerStage
			if err := each(tx.Bucket(bucketStages).Bucket([]byte(m.Key)), &st); err != nil {
				return err
			}
			d.Stages[m.Key] = st
			var cs []domain.Cohort
			if err := each(tx.Bucket(bucketCohorts).Bucket([]byte(m.Key)), &cs); err != nil {
				return err
			}
			d.Cohorts[m.Key] = cs
		}
		if _, v := tx.Bucket(bucketAudit).Cursor().Last(); v != nil {
			return json.Unmarshal(v, &d.LastAudit)
		}
		return nil
	})
	return d, err
}

// each decodes every value of b, if b exists, into *out.
func each[T any](b *bbolt.Bucket, out *[]T) error {
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		*out = append(*out, x)
		return nil
	})
}

// Update runs fn in one write transaction.
func (s *Store) Update(ctx context.Context, fn func(control.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(btx *bbolt.Tx) error { return fn(&tx{btx}) })
}

// AuditLog returns up to limit entries with seq > after.
func (s *Store) AuditLog(ctx context.Context, after uint64, limit int) ([]domain.AuditEntry, error) {
	out := []domain.AuditEntry{}
	if after == math.MaxUint64 {
		return out, nil // nothing follows the last possible seq; after+1 would wrap
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var e domain.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

type tx struct{ *bbolt.Tx }

func (t *tx) PutPartner(p domain.Partner) error {
	return putJSON(t.Bucket(bucketPartners), []byte(p.ID), p)
}

func (t *tx) PutMigration(m domain.Migration) error {
	return putJSON(t.Bucket(bucketMigrations), []byte(m.Key), m)
}

func (t *tx) PutStage(migration string, ps domain.PartnerStage) error {
	b, err := t.Bucket(bucketStages).CreateBucketIfNotExists([]byte(migration))
	if err != nil {
		return err
	}
	return putJSON(b, []byte(ps.Partner), ps)
}

func (t *tx) PutCohort(migration string, c domain.Cohort) error {
	b, err := t.Bucket(bucketCohorts).CreateBucketIfNotExists([]byte(migration))
	if err != nil {
		return err
	}
	return putJSON(b, []byte(c.Name), c)
}

func (t *tx) PutToken(tok domain.Token) error {
	return putJSON(t.Bucket(bucketTokens), []byte(tok.Name), tok)
}

func (t *tx) DeleteToken(name string) error {
	return t.Bucket(bucketTokens).Delete([]byte(name))
}

func (t *tx) PutChange(c domain.ChangeRequest) error {
	return putJSON(t.Bucket(bucketChanges), []byte(c.ID), c)
}

func (t *tx) DeleteChange(id string) error {
	return t.Bucket(bucketChanges).Delete([]byte(id))
}

func (t *tx) SetVersion(v uint64) error {
	return t.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint64(nil, v))
}

func (t *tx) AppendAudit(e domain.AuditEntry) error {
	b := t.Bucket(bucketAudit)
	if k, _ := b.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) >= e.Seq {
		return fmt.Errorf("audit seq %d does not follow %d", e.Seq, binary.BigEndian.Uint64(k))
	}
	return putJSON(b, seqKey(e.Seq), e)
}

func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
