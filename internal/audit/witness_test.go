package audit

import (
	"errors"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
)

// A chain that verifies on its own must also hold every witnessed head:
// a rewrite with recomputed hashes, or a cut tail, fails against one.
func TestVerifierWitnesses(t *testing.T) {
	log := chain(10)
	rewritten := chain(10)
	rewritten[3].Reason = "edited"
	for i := 3; i < len(rewritten); i++ {
		rewritten[i] = Next(rewritten[i-1], rewritten[i])
	}
	witness := func(i int) Witness { return Witness{Seq: log[i].Seq, Hash: log[i].Hash, Source: "router-1"} }
	for _, tt := range []struct {
		name      string
		log       []witnessLog
		witnesses []Witness
		wantSeq   uint64 // 0: verifies
	}{
		{"intact, witnesses held", []witnessLog{{log}}, []Witness{witness(4), witness(9)}, 0},
		{"no witnesses", []witnessLog{{rewritten}}, nil, 0},
		{"tail cut past a witness", []witnessLog{{log[:7]}}, []Witness{witness(4), witness(9)}, 10},
		{"tail cut, witness before the cut", []witnessLog{{log[:7]}}, []Witness{witness(4)}, 0},
		{"rewritten, hashes recomputed", []witnessLog{{rewritten}}, []Witness{witness(9)}, 10},
		{"rewritten before the witness", []witnessLog{{rewritten}}, []Witness{witness(5)}, 6},
		{"rewritten after the witness", []witnessLog{{rewritten}}, []Witness{witness(2)}, 0},
		{"in pages", []witnessLog{{log[:5]}, {log[5:]}}, []Witness{witness(9)}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(domain.AuditEntry{})
			v.Expect(tt.witnesses...)
			var err error
			for _, page := range tt.log {
				if err = v.Check(page.entries); err != nil {
					break
				}
			}
			if err == nil {
				err = v.Finish()
			}
			var b *Break
			switch {
			case tt.wantSeq == 0 && err != nil:
				t.Errorf("got %v, want the chain to verify", err)
			case tt.wantSeq != 0 && (!errors.As(err, &b) || b.Seq != tt.wantSeq):
				t.Errorf("got %v, want a break at seq %d", err, tt.wantSeq)
			}
		})
	}
}

// witnessLog is one page of a log.
type witnessLog struct{ entries []domain.AuditEntry }
