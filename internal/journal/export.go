package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/switchbackhq/switchback/internal/boltfile"
)

// Exported counts what Export wrote and what it could not read.
type Exported struct {
	Written int // events written
	// Lost is the number of events that the journal's indexes name but
	// that could not be read: a lower bound when an index is damaged too.
	Lost int
	// Skipped is the number of damaged stretches of the events bucket
	// that were passed over, and of events whose replays could not all be
	// read (written with those read before the damage).
	Skipped int
}

// Export writes every event of the journal file at path that can still be
// read to w, one JSON object a line, in seq order, with its replays (see
// Event.Replays). It reads a damaged file
// without trusting it: a stretch that panics or faults is skipped and
// counted, and reading goes on after it. The file is opened read-only; it
// returns an error only if the file cannot be opened at all, or if w fails.
func Export(path string, w io.Writer) (Exported, error) {
	var res Exported
	var db *bbolt.DB
	err := boltfile.Protect(func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
		return err
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return res, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return res, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		known := indexedSeqs(tx)
		written := map[uint64]bool{}
		var werr error
		res.Skipped = salvage(tx, func(seq uint64, v []byte) bool {
			var e Event
			if json.Unmarshal(v, &e) != nil || e.Seq != seq {
				return true // garbage where an event was: counted lost below if indexed
			}
			if !salvageReplays(tx, seq, &e) {
				res.Skipped++ // the event is written without the replays past the damage
			}
			line, err := json.Marshal(e)
			if err == nil {
				_, err = w.Write(append(line, '\n'))
			}
			if err != nil {
				werr = err
				return false
			}
			written[seq] = true
			res.Written++
			return true
		})
		for seq := range known {
			if !written[seq] {
				res.Lost++
			}
		}
		return werr
	})
	return res, err
}

// salvageReplays adds to e, the event with seq, what readReplays adds,
// as far as it can be read; false if some could not be.
func salvageReplays(tx *bbolt.Tx, seq uint64, e *Event) bool {
	return boltfile.Protect(func() error { return readReplays(tx, seq, e) }) == nil
}

// indexedSeqs returns the seqs named by the partner index and the pending
// set, as far as they can be read.
func indexedSeqs(tx *bbolt.Tx) map[uint64]bool {
	seqs := map[uint64]bool{}
	for _, name := range [][]byte{bucketPartner, bucketPending} {
		boltfile.Protect(func() error {
			b := tx.Bucket(name)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, _ []byte) error {
				if len(k) >= 8 {
					seqs[binary.BigEndian.Uint64(k[len(k)-8:])] = true
				}
				return nil
			})
		})
	}
	return seqs
}

// salvage calls fn with every event key and value of the events bucket
// that can be read, in key order, until fn returns false. Where reading
// panics, faults or goes backwards, it seeks ever further ahead until a
// seek succeeds, and counts the stretch skipped, which it returns.
func salvage(tx *bbolt.Tx, fn func(seq uint64, v []byte) bool) (skipped int) {
	var b *bbolt.Bucket
	var last uint64
	if boltfile.Protect(func() error { b = tx.Bucket(bucketEvents); return nil }) != nil || b == nil {
		return 1
	}
	from := uint64(1)
	for {
		stop := false
		err := boltfile.Protect(func() error {
			c := b.Cursor()
			for k, v := c.Seek(seqKey(from)); ; k, v = c.Next() {
				if k == nil {
					stop = true
					return nil
				}
				if len(k) != 8 || bytes.Compare(k, seqKey(last)) <= 0 && last != 0 {
					return errors.New("keys out of order")
				}
				last = binary.BigEndian.Uint64(k)
				if !fn(last, v) {
					stop = true
					return nil
				}
			}
		})
		if err == nil || stop {
			return skipped
		}
		skipped++
		next, ok := seekPast(b, max(last, from))
		if !ok {
			return skipped
		}
		from = next
	}
}

// seekPast finds the first seq after s from which a seek reads. The keys
// are dense sequence numbers, so it jumps s+1, s+2, s+4 and so on past the
// damage, then narrows back down so as not to skip readable events.
func seekPast(b *bbolt.Bucket, s uint64) (uint64, bool) {
	reads := func(from uint64) bool {
		return boltfile.Protect(func() error {
			if k, _ := b.Cursor().Seek(seqKey(from)); k != nil && len(k) != 8 {
				return errors.New("bad key")
			}
			return nil
		}) == nil
	}
	lo := s // the last seq known not to read
	for step := uint64(1); step != 0 && s+step > s; step <<= 1 {
		hi := s + step
		if !reads(hi) {
			lo = hi
			continue
		}
		for hi-lo > 1 {
			if mid := lo + (hi-lo)/2; reads(mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
		return hi, true
	}
	return 0, false
}
