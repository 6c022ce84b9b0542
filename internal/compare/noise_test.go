package compare

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

func TestPathOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"fields.status", "fields.status"},
		{"fields.lines[2].price", "fields.lines[].price"},
		{"fields.grid[0][11]", "fields.grid[][]"},
		{`fields["a[1] b"]`, `fields["a[1] b"]`},
		{`fields["a\"[1]"].x[3]`, `fields["a\"[1]"].x[]`},
		{"fields", "fields"},
	}
	for _, tt := range tests {
		if got := PathOf(tt.in); got != tt.want {
			t.Errorf("PathOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// stamped is a ticket as a noisy legacy pipeline answers it: a fresh time
// and a random id on every run.
func stamped(run int) pipelineclient.Effect {
	return with(ticket(), map[string]any{"processedAt": fmt.Sprintf("2026-03-02T09:14:%02dZ", run), "requestId": fmt.Sprintf("req-%d", run)})
}

func TestValueDiffPaths(t *testing.T) {
	tests := []struct {
		name            string
		eventType       string
		primary, shadow []pipelineclient.Effect
		want            []string
	}{
		{"two runs of a noisy legacy", "ticket", []pipelineclient.Effect{stamped(1)}, []pipelineclient.Effect{stamped(2)},
			[]string{"ticket:fields.processedAt", "ticket:fields.requestId"}},
		{"noisy legacy against a correct new", "ticket", []pipelineclient.Effect{stamped(1)}, []pipelineclient.Effect{ticket()},
			[]string{"ticket:fields.processedAt", "ticket:fields.requestId"}},
		{"list indices collapse", "ticket", []pipelineclient.Effect{with(ticket(), map[string]any{"tags": []any{"a", "b", "c"}})},
			[]pipelineclient.Effect{with(ticket(), map[string]any{"tags": []any{"x", "y", "c", "d"}})}, []string{"ticket:fields.tags[]"}},
		// Effects of several kinds are compared when psa cannot name the
		// event's entity type.
		{"each effect's kind", "unknown", []pipelineclient.Effect{stamped(1), contactWithID("c-1")}, []pipelineclient.Effect{stamped(1), contactWithID("c-2")},
			[]string{"contact:fields.id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compare(tt.eventType, Side{Effects: tt.primary}, Side{Effects: tt.shadow}, nil)
			if r.Class != domain.ClassValueDiff {
				t.Fatalf("class = %s, want value_diff", r.Class)
			}
			if !slices.Equal(r.Paths, tt.want) {
				t.Errorf("paths = %q, want %q", r.Paths, tt.want)
			}
		})
	}
}

// Noise hides only field values: every other class keeps its class
// whatever is noise, and has no paths to be noise with.
func TestNoiseNeverHidesOtherClasses(t *testing.T) {
	everything := func(string) bool { return true }
	// Each side's effects also differ in the stamped fields from the
	// other's matched effect.
	noisy, other := stamped(1), stamped(3)
	other.Key = "999"
	tests := []struct {
		name            string
		eventType       string
		primary, shadow Side
		want            domain.Class
	}{
		{"type_mismatch", "ticket", Side{Effects: []pipelineclient.Effect{noisy}}, Side{Effects: []pipelineclient.Effect{schedule()}}, domain.ClassTypeMismatch},
		{"missing", "ticket", Side{Effects: []pipelineclient.Effect{noisy, other}}, Side{Effects: []pipelineclient.Effect{ticket()}}, domain.ClassMissing},
		{"extra", "ticket", Side{Effects: []pipelineclient.Effect{noisy}}, Side{Effects: []pipelineclient.Effect{ticket(), other}}, domain.ClassExtra},
		{"empty", "ticket", Side{Effects: []pipelineclient.Effect{noisy}}, Side{}, domain.ClassEmpty},
		{"error_asymmetry", "ticket", Side{Err: &pipelineclient.Error{Status: 422}}, Side{Effects: []pipelineclient.Effect{noisy}}, domain.ClassErrorAsymmetry},
		{"shadow_error", "ticket", Side{Effects: []pipelineclient.Effect{noisy}}, Side{Err: errors.New("timeout")}, domain.ClassShadowError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compare(tt.eventType, tt.primary, tt.shadow, nil)
			if r.Class != tt.want {
				t.Fatalf("class = %s, want %s", r.Class, tt.want)
			}
			if r.Paths != nil {
				t.Errorf("paths = %q, want none: only a value_diff has paths", r.Paths)
			}
			if got := Reclassify(r, everything).Class; got != tt.want {
				t.Errorf("Reclassify with every path noise = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestReclassify(t *testing.T) {
	r := Compare("ticket", Side{Effects: []pipelineclient.Effect{stamped(1)}}, Side{Effects: []pipelineclient.Effect{stamped(2)}}, nil)
	learned := map[string]bool{"ticket:fields.processedAt": true, "ticket:fields.requestId": true}
	if got := Reclassify(r, func(p string) bool { return learned[p] }); got.Class != domain.ClassNoise || got.Diff != r.Diff {
		t.Errorf("every path noise: %s with diff %q, want noise with the same diff", got.Class, got.Diff)
	}
	delete(learned, "ticket:fields.requestId")
	if got := Reclassify(r, func(p string) bool { return learned[p] }); got.Class != domain.ClassValueDiff {
		t.Errorf("one path not noise: %s, want value_diff", got.Class)
	}
	signal := Compare("ticket", Side{Effects: []pipelineclient.Effect{stamped(1)}}, Side{Effects: []pipelineclient.Effect{with(stamped(2), map[string]any{"status": "closed"})}}, nil)
	learned["ticket:fields.requestId"] = true
	if got := Reclassify(signal, func(p string) bool { return learned[p] }); got.Class != domain.ClassValueDiff {
		t.Errorf("noise and a real difference: %s, want value_diff", got.Class)
	}
}

// contactWithID is a contact effect that a ticket event may also touch, with
// an id field of its own.
func contactWithID(id string) pipelineclient.Effect {
	return pipelineclient.Effect{Kind: "contact", Op: "upsert", Key: "77", Fields: map[string]any{"id": id, "name": "Jane Roe"}}
}

// A field of one effect kind that legacy stamps afresh is noise for that
// kind only: the same field wrong in another kind of effect of the event
// (of a type psa cannot name, so that both kinds are compared) stays a
// value_diff.
func TestNoiseIsPerEffectKind(t *testing.T) {
	idOf := func(e pipelineclient.Effect, id string) pipelineclient.Effect {
		return with(e, map[string]any{"id": id})
	}
	legacy := Compare("unknown", Side{Effects: []pipelineclient.Effect{idOf(ticket(), "t-1"), contactWithID("c-1")}},
		Side{Effects: []pipelineclient.Effect{idOf(ticket(), "t-2"), contactWithID("c-1")}}, nil)
	if want := []string{"ticket:fields.id"}; !slices.Equal(legacy.NoisePaths(), want) {
		t.Fatalf("legacy against itself: paths %q, want %q", legacy.NoisePaths(), want)
	}
	learned := map[string]bool{legacy.Paths[0]: true}
	wrongContact := Compare("unknown", Side{Effects: []pipelineclient.Effect{idOf(ticket(), "t-1"), contactWithID("c-1")}},
		Side{Effects: []pipelineclient.Effect{idOf(ticket(), "t-1"), contactWithID("c-9")}}, nil)
	if got := Reclassify(wrongContact, func(p string) bool { return learned[p] }); got.Class != domain.ClassValueDiff {
		t.Errorf("the contact's id wrong, the ticket's id noise: %s (paths %q), want value_diff", got.Class, got.Paths)
	}
}

// A path naming a whole list element or a whole list is never noise and
// never learned, whatever is pinned: a reordered or random list in legacy
// must not hide a new pipeline that drops a line item.
func TestWholeListsAreNeverNoise(t *testing.T) {
	line := func(sku string, price float64) map[string]any { return map[string]any{"sku": sku, "price": price} }
	lines := func(ls ...map[string]any) pipelineclient.Effect {
		l := make([]any, len(ls))
		for i, x := range ls {
			l[i] = x
		}
		return with(ticket(), map[string]any{"lines": l})
	}
	a, b, c := line("a", 1), line("b", 2), line("c", 3)
	tests := []struct {
		name            string
		primary, shadow pipelineclient.Effect
		noise           bool   // whether the paths may be noise
		path            string // one of the paths, as compare writes it
	}{
		{"a field inside elements", lines(a, b), lines(a, line("b", 2.5)), true, "ticket:fields.lines[].price"},
		{"a line dropped", lines(a, b, c), lines(a, c), false, "ticket:fields.lines[]"},
		{"a line added", lines(a, b), lines(a, b, c), false, "ticket:fields.lines[]"},
		{"reordered", lines(a, b, c), lines(c, a, b), false, "ticket:fields.lines[]"},
		{"a random tag", with(ticket(), map[string]any{"tags": []any{"x", "r-1"}}), with(ticket(), map[string]any{"tags": []any{"x", "r-2"}}), false, "ticket:fields.tags[]"},
		{"the list left out", lines(a, b), ticket(), false, "ticket:fields.lines"},
		{"the list as another type", lines(a), with(ticket(), map[string]any{"lines": "a"}), false, "ticket:fields.lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compare("ticket", Side{Effects: []pipelineclient.Effect{tt.primary}}, Side{Effects: []pipelineclient.Effect{tt.shadow}}, nil)
			if r.Class != domain.ClassValueDiff || !slices.Contains(r.Paths, tt.path) {
				t.Fatalf("%s with paths %q, want value_diff with %q", r.Class, r.Paths, tt.path)
			}
			got := Reclassify(r, func(string) bool { return true }).Class == domain.ClassNoise
			if got != tt.noise {
				t.Errorf("every path pinned noise: noise %v, want %v (paths %q)", got, tt.noise, r.Paths)
			}
			if learnable := len(r.NoisePaths()) > 0; learnable != tt.noise {
				t.Errorf("NoisePaths = %q: learnable %v, want %v", r.NoisePaths(), learnable, tt.noise)
			}
		})
	}
}

// Past MaxPaths paths, not every path is known, so the diff is never noise;
// and a diff cut at 4 KiB still knows every path.
func TestPathsBounded(t *testing.T) {
	wide := func(v string) pipelineclient.Effect {
		f := map[string]any{}
		for i := range MaxPaths + 1 {
			f[fmt.Sprintf("f%03d", i)] = v
		}
		return pipelineclient.Effect{Kind: "ticket", Key: "1", Op: "upsert", Fields: f}
	}
	r := Compare("ticket", Side{Effects: []pipelineclient.Effect{wide("a")}}, Side{Effects: []pipelineclient.Effect{wide("b")}}, nil)
	if len(r.Paths) != MaxPaths {
		t.Errorf("%d paths, want %d", len(r.Paths), MaxPaths)
	}
	if got := Reclassify(r, func(string) bool { return true }).Class; got != domain.ClassValueDiff {
		t.Errorf("more than MaxPaths paths: %s, want value_diff", got)
	}

	var p, s []pipelineclient.Effect
	for i := range 60 {
		e := pipelineclient.Effect{Kind: "ticket", Key: fmt.Sprintf("k%02d", i), Op: "upsert", Fields: map[string]any{"body": strings.Repeat("x", 200)}}
		p = append(p, e)
		d := with(e, map[string]any{"body": strings.Repeat("y", 200)})
		if i == 59 {
			d = with(e, map[string]any{"late": true})
		}
		s = append(s, d)
	}
	r = Compare("ticket", Side{Effects: p}, Side{Effects: s}, nil)
	if !strings.Contains(r.Diff, "left out") {
		t.Fatalf("the diff is not cut: the test needs a longer one")
	}
	if want := []string{"ticket:fields.body", "ticket:fields.late"}; !slices.Equal(r.Paths, want) {
		t.Errorf("paths of a cut diff = %q, want %q", r.Paths, want)
	}
}
