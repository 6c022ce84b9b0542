package flagd_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/flagd"
	"github.com/switchbackhq/switchback/internal/flagd/flagdtest"
)

// everyCase is a snapshot with a partner at each stage, one without a
// stage record, one whose record is at legacy, one at a stage this
// release does not know, and the same stages in a reverted migration.
func everyCase() *flags.Snapshot {
	stages := map[string]string{"s-shadow": flags.StageShadow, "s-new": flags.StageNew, "s-done": flags.StageDone,
		"s-legacy": flags.StageLegacy, "s-future": "canary"}
	s := &flags.Snapshot{Version: 42, StoreID: "store-1", Partners: map[string]flags.Partner{},
		Migrations: map[string]*flags.Migration{"tickets": {Stages: stages}, "billing": {Reverted: true, Stages: stages}}}
	for _, p := range []string{"s-shadow", "s-new", "s-done", "s-legacy", "s-future", "no-record"} {
		s.Partners[p] = flags.Partner{Name: p, PSA: "generic"}
	}
	return s
}

// keysOf are the targeting keys every check asks about: each partner,
// an unknown one, none, and keys that only a careless substring search
// would match.
func keysOf(s *flags.Snapshot) []string {
	keys := []string{"", "unknown", "s-new,s-done", "s-done,s-new", ",s-new,", "s-ne", "s-new ", " s-new", "S-NEW", "s-new,", ","}
	for p := range s.Partners {
		keys = append(keys, p)
	}
	return keys
}

// check fails t unless flagd's evaluator, loaded with s's configuration,
// answers every migration's KEY and KEY:shadow as Evaluate does for keys.
func check(t *testing.T, s *flags.Snapshot, keys []string) {
	t.Helper()
	doc, err := flagd.Encode(s, "")
	if err != nil {
		t.Fatal(err)
	}
	ev := flagdtest.New(t)
	ev.Load(t, doc.JSON)
	for m := range s.Migrations {
		for _, k := range keys {
			value, shadow := flagdtest.Want(s, m, k)
			if got, _, err := ev.String(m, k); err != nil || got != value {
				t.Errorf("flagd %s for %q = %q, %v; Evaluate: %q", m, k, got, err, value)
			}
			if got, _, err := ev.String(m+flagd.ShadowSuffix, k); err != nil || got != shadow {
				t.Errorf("flagd %s%s for %q = %q, %v; Evaluate's shadow: %q", m, flagd.ShadowSuffix, k, got, err, shadow)
			}
		}
	}
}

func TestFlagdAnswersAsEvaluate(t *testing.T) {
	s := everyCase()
	check(t, s, keysOf(s))
}

// A property over random snapshots: random stages (stage records at
// legacy included), partners without records, reverted migrations.
func TestFlagdAnswersAsEvaluateRandom(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	stages := []string{"", flags.StageLegacy, flags.StageShadow, flags.StageNew, flags.StageDone}
	for range 20 {
		s := &flags.Snapshot{Version: rng.Uint64N(1000), Partners: map[string]flags.Partner{}, Migrations: map[string]*flags.Migration{}}
		n := 1 + rng.IntN(60)
		for i := range n {
			// Ids that are prefixes and suffixes of each other.
			s.Partners["p-"+strconv.Itoa(i)] = flags.Partner{Name: "P"}
		}
		for m := range 1 + rng.IntN(3) {
			mig := &flags.Migration{Reverted: rng.IntN(4) == 0, Stages: map[string]string{}}
			for p := range s.Partners {
				if st := stages[rng.IntN(len(stages))]; st != "" {
					mig.Stages[p] = st
				}
			}
			s.Migrations["m"+strconv.Itoa(m)] = mig
		}
		check(t, s, append(keysOf(s), "p-", "p-1,p-2", "p-"+strconv.Itoa(n)))
		if t.Failed() {
			return
		}
	}
}

func TestEncode(t *testing.T) {
	s := everyCase()
	doc, err := flagd.Encode(s, "")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Metadata map[string]any `json:"metadata"`
		Flags    map[string]struct {
			State          string            `json:"state"`
			DefaultVariant string            `json:"defaultVariant"`
			Variants       map[string]string `json:"variants"`
			Targeting      json.RawMessage   `json:"targeting"`
			Metadata       map[string]any    `json:"metadata"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(doc.JSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Metadata; got["version"] != "42" || got["flagSetId"] != "switchback" || got["storeId"] != "store-1" {
		t.Errorf("flag set metadata = %v, want version 42, flagSetId switchback, storeId store-1", got)
	}
	if len(cfg.Flags) != 4 {
		t.Errorf("flags = %d, want 4 (KEY and KEY:shadow of two migrations)", len(cfg.Flags))
	}
	for key, f := range cfg.Flags {
		if f.State != "ENABLED" {
			t.Errorf("%s: state %q, want ENABLED (DISABLED reads as a missing flag)", key, f.State)
		}
		reverted := strings.HasPrefix(key, "billing")
		if reverted != (f.Targeting == nil) {
			t.Errorf("%s: targeting %s; want none exactly for the reverted migration", key, f.Targeting)
		}
		if f.Metadata["reverted"] != reverted {
			t.Errorf("%s: metadata %v, want reverted %v", key, f.Metadata, reverted)
		}
	}
	if f := cfg.Flags["tickets"]; f.DefaultVariant != flags.Legacy || len(f.Variants) != 2 || f.Variants["new"] != "new" {
		t.Errorf("tickets = %+v, want variants legacy and new, default legacy", f)
	}
	if f := cfg.Flags["tickets:shadow"]; f.DefaultVariant != flagd.None || len(f.Variants) != 3 || f.Variants["none"] != "none" {
		t.Errorf("tickets:shadow = %+v, want variants legacy, new and none, default none", f)
	}

	// The same snapshot encodes to the same bytes (and ETag); another
	// version to another ETag.
	again, _ := flagd.Encode(everyCase(), "")
	if string(again.JSON) != string(doc.JSON) || again.ETag != doc.ETag {
		t.Errorf("two encodings of one snapshot differ")
	}
	s.Version++
	if next, _ := flagd.Encode(s, ""); next.ETag == doc.ETag {
		t.Errorf("ETag %s did not change with the version", doc.ETag)
	}
}

func TestEncodeSelector(t *testing.T) {
	s := everyCase()
	for _, tc := range []struct {
		selector string
		want     []string
	}{
		{"", []string{"billing", "billing:shadow", "tickets", "tickets:shadow"}},
		{"tickets", []string{"tickets", "tickets:shadow"}},
		{"later", nil},
	} {
		doc, err := flagd.Encode(s, tc.selector)
		if err != nil {
			t.Fatalf("selector %q: %v", tc.selector, err)
		}
		var cfg struct {
			Flags map[string]json.RawMessage `json:"flags"`
		}
		if err := json.Unmarshal(doc.JSON, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Flags == nil {
			t.Errorf("selector %q: no flags object; want one, even empty", tc.selector)
		}
		var got []string
		for k := range cfg.Flags {
			got = append(got, k)
		}
		if strings.Join(sorted(got), " ") != strings.Join(tc.want, " ") {
			t.Errorf("selector %q: flags %v, want %v", tc.selector, sorted(got), tc.want)
		}
		flagdtest.Validate(t, doc.JSON)
	}
	for _, bad := range []string{"flagSetId=switchback", "Tickets", "a b"} {
		_, err := flagd.Encode(s, bad)
		if e, ok := err.(*domain.Error); !ok || e.Code != domain.CodeInvalid {
			t.Errorf("selector %q: got %v, want invalid_argument", bad, err)
		}
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// The encoder refuses a stage record whose partner id could contain the
// list separator, rather than write a list that would match other keys.
func TestEncodeRefusesInvalidPartnerIDs(t *testing.T) {
	s := &flags.Snapshot{Migrations: map[string]*flags.Migration{"m": {Stages: map[string]string{"a,b": flags.StageNew}}}}
	if _, err := flagd.Encode(s, ""); err == nil {
		t.Fatal("Encode accepted the partner id \"a,b\"")
	}
}

func TestCacheEncodesOncePerSnapshot(t *testing.T) {
	var c flagd.Cache
	s := everyCase()
	a, _ := c.Get(s, "")
	b, _ := c.Get(s, "")
	if &a.JSON[0] != &b.JSON[0] {
		t.Errorf("the cache encoded one snapshot twice")
	}
	next := everyCase()
	next.Version = 43
	n, _ := c.Get(next, "")
	if n.ETag == a.ETag {
		t.Errorf("the cache answered the old snapshot's document for a new one")
	}
	if d, _ := c.Get(next, "tickets"); !strings.Contains(string(d.JSON), `"tickets:shadow"`) || strings.Contains(string(d.JSON), "billing") {
		t.Errorf("selector tickets: %s", d.JSON)
	}
	if _, err := c.Get(nil, ""); err == nil {
		t.Errorf("a nil snapshot encoded")
	}
}
