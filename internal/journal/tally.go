package journal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"

	bbolt "go.etcd.io/bbolt"
)

// What a router owes the control service (its comparison counts) is kept
// here until the control service has acknowledged it, so that neither a
// restart nor an outage of the control service loses a count, and a report
// sent again is recognized:
//
//   - Tally, in the transaction of the outcome or comparison it counts
//     (Outcome.Tallies), or alone, adds to the owed counts by key;
//   - Seal moves owed counts into a sealed report with the next seq of this
//     journal, or returns the sealed report not yet acknowledged;
//   - Acknowledge deletes a sealed report once the control service has it.
//
// The control service knows a report by its Epoch (the journal session's)
// and its seq, and counts each seq once.

var (
	bucketOwed    = []byte("owed")
	bucketReports = []byte("reports")
)

// Tally is an amount owed under a key that the caller chooses and decodes.
type Tally struct {
	Key string
	N   uint64
}

// Sealed is a report of owed counts, by key, as it will always be sent:
// the same Epoch and Seq carry the same counts.
type Sealed struct {
	// Epoch is the id of the journal's session that sealed the report: a
	// random id made at each Open, so that a journal restored from a
	// backup, whose seqs start again below what the control service has
	// applied, still names its new reports apart from those it applied.
	Epoch  string            `json:"epoch"`
	Seq    uint64            `json:"-"`
	Counts map[string]uint64 `json:"counts"`
}

// Tally adds tallies to what is owed, durably, through the committer: use
// Outcome.Tallies instead when an outcome is written anyway.
func (j *Journal) Tally(ctx context.Context, tallies []Tally) error {
	if len(tallies) == 0 {
		return nil
	}
	return j.write1(ctx, &op{tallies: tallies, done: make(chan struct{})})
}

func addTallies(tx *bbolt.Tx, tallies []Tally) error {
	if len(tallies) == 0 {
		return nil
	}
	b := tx.Bucket(bucketOwed)
	for _, t := range tallies {
		if t.N == 0 {
			continue
		}
		var cur uint64
		if v := b.Get([]byte(t.Key)); len(v) == 8 {
			cur = binary.BigEndian.Uint64(v)
		}
		n := cur + t.N
		if n < cur {
			n = math.MaxUint64 // never wrap: the reporter splits large counts
		}
		if err := b.Put([]byte(t.Key), binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return err
		}
	}
	return nil
}

// Seal returns the oldest sealed report that is not acknowledged yet, or
// else seals up to maxKeys owed keys into a new one. ok is false when
// nothing is owed. It returns ctx's error, sealing nothing, if ctx has
// ended.
func (j *Journal) Seal(ctx context.Context, maxKeys int) (s Sealed, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return Sealed{}, false, err
	}
	// Most calls find nothing owed: look before taking the writer's lock
	// and an fsync.
	var owes bool
	if err := j.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketReports).Cursor().First()
		o, _ := tx.Bucket(bucketOwed).Cursor().First()
		owes = k != nil || o != nil
		return nil
	}); err != nil || !owes {
		return Sealed{}, false, err
	}
	err = j.db.Update(func(tx *bbolt.Tx) error {
		reports := tx.Bucket(bucketReports)
		if k, v := reports.Cursor().First(); k != nil {
			s = Sealed{Seq: binary.BigEndian.Uint64(k)}
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode sealed report %d: %w", s.Seq, err)
			}
			ok = true
			return nil
		}
		owed := tx.Bucket(bucketOwed)
		counts := map[string]uint64{}
		var keys [][]byte
		c := owed.Cursor()
		for k, v := c.First(); k != nil && len(keys) < maxKeys; k, v = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
			if len(v) == 8 {
				counts[string(k)] = binary.BigEndian.Uint64(v)
			}
		}
		if len(keys) == 0 {
			return nil
		}
		for _, k := range keys {
			if err := owed.Delete(k); err != nil {
				return err
			}
		}
		seq, err := reports.NextSequence()
		if err != nil {
			return err
		}
		s, ok = Sealed{Epoch: j.session, Seq: seq, Counts: counts}, true
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return reports.Put(seqKey(seq), v)
	})
	if err != nil {
		return Sealed{}, false, err
	}
	return s, ok, nil
}

// Acknowledge deletes the sealed report seq: the control service has it.
// It returns ctx's error, deleting nothing, if ctx has ended.
func (j *Journal) Acknowledge(ctx context.Context, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return j.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketReports).Delete(seqKey(seq))
	})
}

// Owed returns the counts owed and not yet sealed, plus those of sealed
// reports not yet acknowledged, by key; ctx's error if ctx has ended.
func (j *Journal) Owed(ctx context.Context) (map[string]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	err := j.db.View(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketOwed).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] += binary.BigEndian.Uint64(v)
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketReports).ForEach(func(_, v []byte) error {
			var sealed Sealed
			if err := json.Unmarshal(v, &sealed); err != nil {
				return err
			}
			for k, n := range sealed.Counts {
				out[k] += n
			}
			return nil
		})
	})
	return out, err
}

func newEpoch() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
