package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// chain builds a log of n entries the way the control service does.
func chain(n int) []domain.AuditEntry {
	var prev domain.AuditEntry
	out := make([]domain.AuditEntry, 0, n)
	for i := range n {
		e := Next(prev, domain.AuditEntry{
			At:     t0.Add(time.Duration(i) * time.Second),
			Actor:  []string{"admin", "ops", "guard"}[i%3],
			Action: "stage.set",
			Target: "migration/m/partner/p" + string(rune('a'+i%26)),
			Before: json.RawMessage(`{"stage": "legacy"}`),
			After:  json.RawMessage(`{"stage":"shadow"}`),
			Reason: "step " + string(rune('a'+i%26)),
		})
		out = append(out, e)
		prev = e
	}
	return out
}

func TestNext(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	first := Next(domain.AuditEntry{}, domain.AuditEntry{
		At: t0.In(loc), Actor: "admin", Action: "partner.create", Target: "partner/acme",
		After: json.RawMessage("{\n  \"id\": \"acme\"\n}"),
	})
	if first.Seq != 1 || first.PrevHash != "" {
		t.Errorf("first entry: seq %d prevHash %q, want 1 and empty", first.Seq, first.PrevHash)
	}
	if got, want := string(first.After), `{"id":"acme"}`; got != want {
		t.Errorf("After = %s, want compacted %s", got, want)
	}
	if got, want := string(first.Before), "null"; got != want {
		t.Errorf("empty Before = %s, want %s", got, want)
	}
	if first.At.Location() != time.UTC || !first.At.Equal(t0) {
		t.Errorf("At = %v, want %v in UTC", first.At, t0)
	}
	if first.Hash != Hash(first) || len(first.Hash) != 64 {
		t.Errorf("Hash = %q, want Hash(entry) = %q, 64 hex digits", first.Hash, Hash(first))
	}
	second := Next(first, domain.AuditEntry{At: t0, Actor: "admin", Action: "partner.update", Target: "partner/acme"})
	if second.Seq != 2 || second.PrevHash != first.Hash {
		t.Errorf("second entry: seq %d prevHash %q, want 2 and %q", second.Seq, second.PrevHash, first.Hash)
	}
	if second.Hash == first.Hash {
		t.Errorf("two entries share the hash %q", first.Hash)
	}
}

func TestHashFormula(t *testing.T) {
	// The package doc: hash = hex(SHA-256(prevHash || canonical entry)), the
	// canonical entry being the JSON of every field but Hash, in a fixed order.
	e := domain.AuditEntry{
		Seq: 7, At: t0, Actor: "admin", Action: "migration.revert", Target: "migration/m",
		Before: json.RawMessage(`{"reverted":false}`), After: json.RawMessage(`{"reverted":true}`),
		Reason: "incident", PrevHash: "abc",
	}
	canonical := `{"seq":7,"at":"2026-03-01T12:00:00.123456789Z","actor":"admin","action":"migration.revert",` +
		`"target":"migration/m","before":{"reverted":false},"after":{"reverted":true},"reason":"incident","prevHash":"abc"}`
	sum := sha256.Sum256([]byte("abc" + canonical))
	if got, want := Hash(e), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Hash() = %s, want %s", got, want)
	}
	// The hash ignores the Hash field, the time zone and JSON whitespace.
	e2 := e
	e2.Hash = "whatever"
	e2.At = t0.In(time.FixedZone("X", -5*3600))
	e2.Before = json.RawMessage("{ \"reverted\" : false }")
	if Hash(e2) != Hash(e) {
		t.Errorf("Hash depends on Hash, the zone or whitespace")
	}
}

func TestVerifierWholeChain(t *testing.T) {
	log := chain(10)
	v := NewVerifier(domain.AuditEntry{})
	if err := v.Check(log); err != nil {
		t.Fatalf("Check(intact log) = %v", err)
	}
	if got, want := v.Checked, 10; got != want {
		t.Errorf("Checked = %d, want %d", got, want)
	}
	if err := NewVerifier(domain.AuditEntry{}).Check(nil); err != nil {
		t.Errorf("Check(empty log) = %v, want nil", err)
	}
	// A verifier may start after an entry it trusts.
	v = NewVerifier(log[3])
	if err := v.Check(log[4:]); err != nil || v.Checked != 6 {
		t.Errorf("Check(log after seq 4) = %v, checked %d; want nil, 6", err, v.Checked)
	}
}

func TestVerifierDetects(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func([]domain.AuditEntry) []domain.AuditEntry
		seq     uint64
		because string
	}{
		{"altered actor", edit(4, func(e *domain.AuditEntry) { e.Actor = "mallory" }), 5, "altered"},
		{"altered action", edit(4, func(e *domain.AuditEntry) { e.Action = "migration.resume" }), 5, "altered"},
		{"altered target", edit(0, func(e *domain.AuditEntry) { e.Target = "partner/other" }), 1, "altered"},
		{"altered reason", edit(9, func(e *domain.AuditEntry) { e.Reason = "" }), 10, "altered"},
		{"altered before", edit(2, func(e *domain.AuditEntry) { e.Before = json.RawMessage(`{"stage":"new"}`) }), 3, "altered"},
		{"altered after", edit(6, func(e *domain.AuditEntry) { e.After = json.RawMessage(`{"stage":"done"}`) }), 7, "altered"},
		{"after emptied", edit(6, func(e *domain.AuditEntry) { e.After = nil }), 7, "altered"},
		{"altered at", edit(3, func(e *domain.AuditEntry) { e.At = e.At.Add(time.Nanosecond) }), 4, "altered"},
		{"rehashed entry breaks the next", func(l []domain.AuditEntry) []domain.AuditEntry {
			l[4].Actor = "mallory"
			l[4].Hash = Hash(l[4])
			return l
		}, 6, "prevHash"},
		{"removed entry", func(l []domain.AuditEntry) []domain.AuditEntry { return slices.Delete(l, 5, 6) }, 7, "missing"},
		{"removed first entry", func(l []domain.AuditEntry) []domain.AuditEntry { return l[1:] }, 2, "missing"},
		{"reordered entries", func(l []domain.AuditEntry) []domain.AuditEntry {
			l[3], l[4] = l[4], l[3]
			return l
		}, 5, "missing"},
		{"wrong prevHash", edit(7, func(e *domain.AuditEntry) { e.PrevHash = strings.Repeat("0", 64) }), 8, "prevHash"},
		{"wrong prevHash rehashed", func(l []domain.AuditEntry) []domain.AuditEntry {
			l[7].PrevHash = strings.Repeat("0", 64)
			l[7].Hash = Hash(l[7])
			return l
		}, 8, "prevHash"},
		{"renumbered entry", edit(2, func(e *domain.AuditEntry) { e.Seq = 30 }), 30, "missing"},
		{"forged hash", edit(8, func(e *domain.AuditEntry) { e.Hash = strings.Repeat("f", 64) }), 9, "altered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := tt.tamper(chain(10))
			v := NewVerifier(domain.AuditEntry{})
			err := v.Check(log)
			var b *Break
			if !errors.As(err, &b) {
				t.Fatalf("Check() = %v, want a *Break", err)
			}
			if b.Seq != tt.seq {
				t.Errorf("break at seq %d, want %d (%v)", b.Seq, tt.seq, err)
			}
			if !strings.Contains(b.Reason, tt.because) {
				t.Errorf("break reason %q, want it to mention %q", b.Reason, tt.because)
			}
			if got, want := uint64(v.Checked), tt.seq-1; tt.seq < 20 && got > want {
				t.Errorf("Checked = %d, want at most %d entries before the break", got, want)
			}
		})
	}
}

func TestVerifierPages(t *testing.T) {
	log := chain(37)
	for _, size := range []int{1, 2, 5, 10, 36, 37, 100} {
		t.Run("page size "+strconv.Itoa(size), func(t *testing.T) {
			v := NewVerifier(domain.AuditEntry{})
			for i := 0; i < len(log); i += size {
				if err := v.Check(log[i:min(i+size, len(log))]); err != nil {
					t.Fatalf("page at %d: %v", i, err)
				}
			}
			if got, want := v.Checked, len(log); got != want {
				t.Errorf("Checked = %d, want %d", got, want)
			}
		})
		t.Run("tampered, page size "+strconv.Itoa(size), func(t *testing.T) {
			bad := slices.Clone(log)
			bad[20].Reason = "rewritten"
			v := NewVerifier(domain.AuditEntry{})
			var err error
			for i := 0; i < len(bad) && err == nil; i += size {
				err = v.Check(bad[i:min(i+size, len(bad))])
			}
			var b *Break
			if !errors.As(err, &b) || b.Seq != 21 {
				t.Errorf("Check() = %v, want a break at seq 21 whatever the page size", err)
			}
		})
	}
}

func TestBreakError(t *testing.T) {
	b := &Break{Seq: 4, Reason: "it was altered"}
	if got, want := b.Error(), "audit chain breaks at seq 4: it was altered"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestNextRoundTripsThroughJSON(t *testing.T) {
	// What storage gives back must still verify.
	log := chain(5)
	b, err := json.Marshal(log)
	if err != nil {
		t.Fatal(err)
	}
	var back []domain.AuditEntry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(log, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	if err := NewVerifier(domain.AuditEntry{}).Check(back); err != nil {
		t.Errorf("Check(after JSON round trip) = %v", err)
	}
}

func edit(i int, f func(*domain.AuditEntry)) func([]domain.AuditEntry) []domain.AuditEntry {
	return func(l []domain.AuditEntry) []domain.AuditEntry {
		f(&l[i])
		return l
	}
}
