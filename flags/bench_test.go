package flags

import (
	"strconv"
	"testing"
)

// benchSnapshot holds n partners p-0…p-(n-1) in one migration "m", spread
// over the four stages (those at legacy have no stage record).
func benchSnapshot(n int) *Snapshot {
	stages := []string{StageLegacy, StageShadow, StageNew, StageDone}
	s := &Snapshot{
		Version:    1,
		Migrations: map[string]*Migration{"m": {Stages: make(map[string]string, n)}},
		Partners:   make(map[string]Partner, n),
	}
	for i := range n {
		id := "p-" + strconv.Itoa(i)
		s.Partners[id] = Partner{Name: id, PSA: "connectwise"}
		if st := stages[i%len(stages)]; st != StageLegacy {
			s.Migrations["m"].Stages[id] = st
		}
	}
	return s
}

func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run("partners="+strconv.Itoa(n), func(b *testing.B) {
			s := benchSnapshot(n)
			keys := make([]string, n)
			for i := range keys {
				keys[i] = "p-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			var r Resolution
			for i := 0; b.Loop(); i++ {
				r = s.Evaluate("m", keys[i%n])
			}
			if r.Value != Legacy && r.Value != New {
				b.Fatalf("Value = %q", r.Value)
			}
		})
	}
}
