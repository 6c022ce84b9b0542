package flagd_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/flagd"
	"github.com/switchbackhq/switchback/internal/flagd/flagdtest"
)

// benchSnapshot holds n partners p-0…p-(n-1) in one migration "m", a
// quarter at each stage (those at legacy without a stage record).
func benchSnapshot(n int) *flags.Snapshot {
	stages := []string{flags.StageLegacy, flags.StageShadow, flags.StageNew, flags.StageDone}
	s := &flags.Snapshot{Version: 1, Partners: map[string]flags.Partner{},
		Migrations: map[string]*flags.Migration{"m": {Stages: map[string]string{}}}}
	for i := range n {
		id := "p-" + strconv.Itoa(i)
		s.Partners[id] = flags.Partner{Name: id}
		if st := stages[i%4]; st != flags.StageLegacy {
			s.Migrations["m"].Stages[id] = st
		}
	}
	return s
}

// withTargeting returns the configuration doc with flag's targeting
// replaced by rule.
func withTargeting(tb testing.TB, doc []byte, flag string, rule any) []byte {
	var cfg map[string]any
	if err := json.Unmarshal(doc, &cfg); err != nil {
		tb.Fatal(err)
	}
	cfg["flags"].(map[string]any)[flag].(map[string]any)["targeting"] = rule
	b, err := json.Marshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkTargetingShape measures one evaluation of the flag "m" of a
// migration with 1,000 partners in flagd's own evaluator (flagd core,
// as flagd's Go provider runs it in process), with the targeting this
// package writes and with the two usual alternatives:
//
//   - string: ",KEY," in one string of the partners (what Encode writes);
//   - array: {"in": [KEY, [ids…]]}, the JSONLogic list membership;
//   - if-chain: {"if": [{"==": [KEY, id]}, "new", …]}, one rule per partner.
//
// Each shape answers the same; the test of each shape checks it.
func BenchmarkTargetingShape(b *testing.B) {
	const n = 1000
	s := benchSnapshot(n)
	doc, err := flagd.Encode(s, "")
	if err != nil {
		b.Fatal(err)
	}
	key := map[string]any{"var": "targetingKey"}
	var toNew []any
	var chain []any
	for p, st := range s.Migrations["m"].Stages {
		if st == flags.StageNew || st == flags.StageDone {
			toNew = append(toNew, p)
			chain = append(chain, map[string]any{"==": []any{key, p}}, flags.New)
		}
	}
	shapes := []struct {
		name string
		doc  []byte
	}{
		{"string", doc.JSON},
		{"array", withTargeting(b, doc.JSON, "m", map[string]any{"if": []any{map[string]any{"in": []any{key, toNew}}, flags.New, nil}})},
		{"if-chain", withTargeting(b, doc.JSON, "m", map[string]any{"if": append(chain, nil)})},
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "p-" + strconv.Itoa(i)
	}
	for _, shape := range shapes {
		b.Run("shape="+shape.name, func(b *testing.B) {
			ev := flagdtest.New(b)
			ev.Load(b, shape.doc)
			for _, k := range keys {
				want, _ := flagdtest.Want(s, "m", k)
				if got, _, err := ev.String("m", k); got != want || err != nil {
					b.Fatalf("%s: %q answered %q, %v; want %q", shape.name, k, got, err, want)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				ev.String("m", keys[i%n])
			}
		})
	}
	// The same flag through flags.Snapshot.Evaluate, what the flags
	// provider runs, for comparison.
	b.Run("flags.Evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			s.Evaluate("m", keys[i%n])
		}
	})
}

// BenchmarkEncode measures the encoding of a 1,000-partner and a
// 10,000-partner migration: once per snapshot version.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("partners="+strconv.Itoa(n), func(b *testing.B) {
			s := benchSnapshot(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := flagd.Encode(s, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoad measures what each flagd provider pays to take a new
// configuration of a 1,000-partner migration (flagd's SetState: schema
// validation, decoding, its store), and of the same migration reverted.
func BenchmarkLoad(b *testing.B) {
	s := benchSnapshot(1000)
	reverted := benchSnapshot(1000)
	reverted.Migrations["m"].Reverted = true
	for _, tc := range []struct {
		name string
		s    *flags.Snapshot
	}{{"partners=1000", s}, {"reverted", reverted}} {
		doc, err := flagd.Encode(tc.s, "")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			ev := flagdtest.New(b)
			ev.Load(b, doc.JSON)
			b.ReportAllocs()
			for b.Loop() {
				if err := ev.Set(doc.JSON); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
