package compare

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// Fuzz flags: which side failed, and how numbers are decoded.
const (
	fuzzPrimaryFails = 1 << iota
	fuzzShadowFails
	fuzzUseNumber
	// fuzzAllowKinds allows as extra every kind either side has (the
	// event's own too, which must excuse nothing), fuzzNewIsPrimary makes
	// the primary the new side (stage new) rather than the shadow.
	fuzzAllowKinds
	fuzzNewIsPrimary
)

// FuzzCompare feeds Compare random effects (JSON lists of effects) and
// rules (comma-separated paths). Compare must never panic and must keep
// its contract: one known class, a diff exactly when not equal, within
// 4 KiB; an event compared with itself (decoded again, in reverse order) is
// equal; the fast equality, the normalized one and go-cmp always agree;
// allowing kinds as extra never turns a type_mismatch whose event kind is
// absent from the new side into anything else, and changes nothing on a
// comparison where neither side is new.
// Seeds are in testdata/fuzz/FuzzCompare.
func FuzzCompare(f *testing.F) {
	f.Add("ticket", []byte(`[{"kind":"ticket","op":"upsert","key":"1","fields":{"status":"open","n":1}}]`),
		[]byte(`[{"kind":"ticket","op":"upsert","key":"1","fields":{"status":"closed","n":1.0}}]`), "updatedAt", "tags", uint8(0))
	f.Fuzz(func(t *testing.T, eventType string, primaryJSON, shadowJSON []byte, ignore, sets string, flags uint8) {
		useNumber := flags&fuzzUseNumber != 0
		primary, ok1 := decodeEffects(primaryJSON, useNumber)
		shadow, ok2 := decodeEffects(shadowJSON, useNumber)
		if !ok1 || !ok2 {
			t.Skip("not a list of effects")
		}
		cr := domain.CompareRules{Ignore: splitPaths(ignore), Sets: splitPaths(sets)}
		if r, err := Compile(cr); (r == nil) == (err == nil) {
			t.Fatalf("Compile(%+v) = %v, %v: want rules or an error", cr, r, err)
		}
		rules := NewRules(cr)
		p, s := Side{Effects: primary}, Side{Effects: shadow}
		if flags&fuzzPrimaryFails != 0 {
			p.Err = &pipelineclient.Error{Status: 500, Msg: "\xff oops"}
		}
		if flags&fuzzShadowFails != 0 {
			s.Err = &pipelineclient.Error{Msg: "timed out after 10s"}
		}

		got := Compare(eventType, p, s, rules)
		checkResult(t, got)
		switch {
		case s.Err != nil && got.Class != domain.ClassShadowError:
			t.Errorf("shadow failed: class = %s, want shadow_error", got.Class)
		case s.Err == nil && p.Err != nil && got.Class != domain.ClassPrimaryError:
			t.Errorf("primary failed with a 500: class = %s, want primary_error", got.Class)
		}
		if p2, _ := decodeEffects(primaryJSON, useNumber); !reflect.DeepEqual(primary, p2) {
			t.Errorf("Compare changed the primary's effects:\n%#v\nwant\n%#v", primary, p2)
		}
		if s2, _ := decodeEffects(shadowJSON, useNumber); !reflect.DeepEqual(shadow, s2) {
			t.Errorf("Compare changed the shadow's effects:\n%#v\nwant\n%#v", shadow, s2)
		}

		// Allowing kinds as extra on the new side.
		if flags&fuzzAllowKinds != 0 {
			cr.AllowExtraKinds = nil
			for _, e := range slices.Concat(primary, shadow) {
				if !slices.Contains(cr.AllowExtraKinds, e.Kind) {
					cr.AllowExtraKinds = append(cr.AllowExtraKinds, e.Kind)
				}
			}
			ar := NewRules(cr)
			if got2 := Compare(eventType, p, s, ar); !reflect.DeepEqual(got2, got) {
				t.Errorf("with kinds allowed but no side new: %+v, want %+v", got2, got)
			}
			np, ns := p, s
			newEffects := shadow
			if flags&fuzzNewIsPrimary != 0 {
				np.New, newEffects = true, primary
			} else {
				ns.New = true
			}
			withAllowed := Compare(eventType, np, ns, ar)
			checkResult(t, withAllowed)
			ownKind := slices.ContainsFunc(newEffects, func(e pipelineclient.Effect) bool { return e.Kind == eventType })
			known := eventType != unknownType && eventType != ""
			if got.Class == domain.ClassTypeMismatch && known && !ownKind && withAllowed.Class != domain.ClassTypeMismatch {
				t.Errorf("type_mismatch with no %q effect on the new side became %s once kinds were allowed; diff:\n%s", eventType, withAllowed.Class, withAllowed.Diff)
			}
			if !got.Class.Compared() && !reflect.DeepEqual(withAllowed, got) {
				t.Errorf("a failed side: %+v with kinds allowed, want %+v", withAllowed, got)
			}
		}

		// The same effects on both sides, in another order, are equal, or
		// of the wrong kind for the event.
		same, _ := decodeEffects(primaryJSON, useNumber)
		slices.Reverse(same)
		if got := Compare(unknownType, Side{Effects: primary}, Side{Effects: same}, rules); got.Class != domain.ClassEqual {
			t.Errorf("Compare(unknown, x, x) = %s, want equal; diff:\n%s", got.Class, got.Diff)
		}
		want := domain.ClassEqual
		for _, e := range primary {
			if eventType != unknownType && eventType != "" && e.Kind != eventType {
				want = domain.ClassTypeMismatch
			}
		}
		if got := Compare(eventType, Side{Effects: primary}, Side{Effects: same}, rules); got.Class != want {
			t.Errorf("Compare(%q, x, x) = %s, want %s; diff:\n%s", eventType, got.Class, want, got.Diff)
		}

		// Three equalities agree, on every pair of effects.
		n := rules.trie(eventType)
		for _, a := range primary {
			for _, b := range shadow {
				na, nb := normFields(a.Fields, n), normFields(b.Fields, n)
				fast, slow, gocmp := equalFields(a.Fields, b.Fields, n), equal(na, nb), cmp.Equal(na, nb)
				if fast != slow || slow != gocmp {
					t.Fatalf("equalFields = %v, equal = %v, cmp.Equal = %v for\n%#v\n%#v", fast, slow, gocmp, na, nb)
				}
				if o := order(na, nb); (o == 0) != slow || order(nb, na) != -o {
					t.Fatalf("order = %d, reversed %d, equal = %v for\n%#v\n%#v", o, order(nb, na), slow, na, nb)
				}
				if !slow {
					// The diff go-cmp writes is never empty.
					dx, dy := differentFields(a.Fields, b.Fields, n)
					if cmp.Equal(dx, dy) {
						t.Fatalf("differentFields kept nothing that go-cmp sees for\n%#v\n%#v", na, nb)
					}
				}
			}
		}
	})
}

func checkResult(t *testing.T, got Result) {
	t.Helper()
	if !got.Class.Valid() || got.Class == domain.ClassSkipped {
		t.Errorf("class = %q, want one Compare can return", got.Class)
	}
	if empty, want := got.Diff == "", got.Class == domain.ClassEqual; empty != want {
		t.Errorf("diff empty = %v, want %v (class %s); diff:\n%s", empty, want, got.Class, got.Diff)
	}
	if len(got.Diff) > maxDiff {
		t.Errorf("len(diff) = %d, want at most %d", len(got.Diff), maxDiff)
	}
	if !utf8.ValidString(got.Diff) {
		t.Errorf("diff is not valid UTF-8: %q", got.Diff)
	}
}

// decodeEffects decodes a JSON list of effects as pipelineclient.Client does, or
// with json.Number for numbers.
func decodeEffects(b []byte, useNumber bool) ([]pipelineclient.Effect, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	if useNumber {
		d.UseNumber()
	}
	var es []pipelineclient.Effect
	if d.Decode(&es) != nil {
		return nil, false
	}
	return es, true
}

func splitPaths(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
