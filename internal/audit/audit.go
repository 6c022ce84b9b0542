// Package audit computes and verifies the hash chain of the audit log.
//
// hash = hex(SHA-256(prevHash || canonical entry)), where the canonical entry
// is the JSON of every field but Hash, in a fixed order, with Before and After
// compacted and the time in RFC 3339 UTC with nanoseconds.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// canonical fixes the field order and formats that the hash covers.
type canonical struct {
	Seq      uint64          `json:"seq"`
	At       string          `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Target   string          `json:"target"`
	Before   json.RawMessage `json:"before"`
	After    json.RawMessage `json:"after"`
	Reason   string          `json:"reason"`
	PrevHash string          `json:"prevHash"`
}

// Hash returns the hash of e chained to e.PrevHash.
func Hash(e domain.AuditEntry) string {
	c := canonical{
		Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action,
		Target: e.Target, Before: compact(e.Before), After: compact(e.After), Reason: e.Reason,
		PrevHash: e.PrevHash,
	}
	b, err := json.Marshal(c)
	if err != nil {
		// Before and After were compacted, so only invalid JSON gets here;
		// hash its raw bytes so the chain still covers them.
		b = fmt.Appendf(nil, "%#v", c)
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Next fills in e's Seq, PrevHash and Hash so that it follows prev, the last
// entry of the log (the zero entry for an empty log).
func Next(prev, e domain.AuditEntry) domain.AuditEntry {
	e.Seq = prev.Seq + 1
	e.PrevHash = prev.Hash
	e.At = e.At.UTC()
	e.Before = compact(e.Before)
	e.After = compact(e.After)
	e.Hash = Hash(e)
	return e
}

// Break says where a chain stops holding.
type Break struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain breaks at seq %d: %s", b.Seq, b.Reason)
}

// Verifier checks a log fed to it in order, in pages of any size.
type Verifier struct {
	prev    domain.AuditEntry
	Checked int
	// witnesses by seq: heads seen outside the database, which the log
	// must still hold.
	witnesses map[uint64][]Witness
}

// Witness is a head of the log seen outside the database: by a router,
// which keeps the heads of the snapshots it took, or exported with
// "switchback audit head". A log that no longer holds it was cut or
// rewritten after it was seen, even if its hash chain verifies.
type Witness struct {
	Seq    uint64
	Hash   string
	Source string // where the witness comes from, for messages
}

// Expect adds witnesses that the log must hold: Check fails at an entry
// whose hash differs from a witness of its seq, and Finish if the log ends
// before a witness's seq.
func (v *Verifier) Expect(ws ...Witness) {
	if v.witnesses == nil {
		v.witnesses = map[uint64][]Witness{}
	}
	for _, w := range ws {
		v.witnesses[w.Seq] = append(v.witnesses[w.Seq], w)
	}
}

// Finish returns a *Break if the log ended before an expected witness: its
// tail was cut after the witness saw it. Call it after the last page.
func (v *Verifier) Finish() error {
	var first *Witness
	for seq, ws := range v.witnesses {
		if seq > v.prev.Seq && (first == nil || seq < first.Seq) {
			first = &ws[0]
		}
	}
	if first != nil {
		return &Break{Seq: first.Seq, Reason: fmt.Sprintf("the log ends at seq %d, but %s saw entry %d: entries were removed from its tail", v.prev.Seq, first.Source, first.Seq)}
	}
	return nil
}

// NewVerifier returns a verifier for a log that starts after prev: the zero
// entry for a whole log.
func NewVerifier(prev domain.AuditEntry) *Verifier { return &Verifier{prev: prev} }

// Check verifies the next entries and returns a *Break at the first one that
// does not follow from the one before it.
func (v *Verifier) Check(entries []domain.AuditEntry) error {
	for _, e := range entries {
		switch {
		case e.Seq != v.prev.Seq+1:
			return &Break{Seq: e.Seq, Reason: fmt.Sprintf("expected seq %d: an entry is missing", v.prev.Seq+1)}
		case e.PrevHash != v.prev.Hash:
			return &Break{Seq: e.Seq, Reason: "prevHash does not match the hash of the entry before it"}
		case Hash(e) != e.Hash:
			return &Break{Seq: e.Seq, Reason: "hash does not match the entry's content: it was altered"}
		}
		for _, w := range v.witnesses[e.Seq] {
			if w.Hash != e.Hash {
				return &Break{Seq: e.Seq, Reason: fmt.Sprintf("hash differs from the one %s saw: the log was rewritten from here or before", w.Source)}
			}
		}
		v.prev = e
		v.Checked++
	}
	return nil
}

func compact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}
