// Package bolt stores the control service's data in one bbolt file.
//
// Bucket layout (schema 1):
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
//
// Transaction rules: only View and Update; values are decoded before the
// transaction ends (bbolt's byte slices die with it); transactions never
// nest and never wait on the network.
package bolt

import (
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

	"github.com/switchbackhq/switchback/internal/boltfile"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// SchemaVersion is the layout this package reads and writes.
const SchemaVersion = 1

var (
	bucketMeta       = []byte("meta")
	bucketPartners   = []byte("partners")
	bucketMigrations = []byte("migrations")
	bucketStages     = []byte("stages")
	bucketCohorts    = []byte("cohorts")
	bucketTokens     = []byte("tokens")
	bucketAudit      = []byte("audit")

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

// The control service finds the statistics methods by type assertion;
// these keep them from silently falling out of step.
var (
	_ control.Store       = (*Store)(nil)
	_ control.Tx          = (*tx)(nil)
	_ control.StatsReader = (*Store)(nil)
	_ control.StatsTx     = (*tx)(nil)
)

// Open opens or creates the file at path. It waits at most timeout for
// another process to release the file and then returns ErrLocked. It reads
// the whole file before it returns: a damaged file returns an error
// wrapping boltfile.ErrDamaged.
func Open(path string, timeout time.Duration) (*Store, error) {
	db, err := boltfile.Open(path, &bbolt.Options{Timeout: timeout})
	if errors.Is(err, bbolt.ErrTimeout) {
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

func initSchema(tx *bbolt.Tx) error {
	for _, b := range [][]byte{bucketMeta, bucketPartners, bucketMigrations, bucketStages, bucketCohorts, bucketTokens, bucketAudit} {
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
