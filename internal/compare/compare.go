package compare

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// Side is what one pipeline did with the event.
type Side struct {
	Effects []pipelineclient.Effect
	Err     error // non-nil: the call failed (non-2xx, timeout)
	// New marks the new pipeline's side, the only one whose effects
	// rules' AllowExtraKinds may excuse. Which side that is depends on the
	// stage: the shadow in shadow, the primary in new. Two legacy runs
	// compared with each other mark neither.
	New bool
}

// Result is one comparison.
type Result struct {
	Class domain.Class
	// Diff is for a release engineer to read, one line per finding: each
	// differing field path with the primary's and the shadow's value, each
	// missing or extra effect, each effect of the wrong kind, each failure.
	// It is "" when Class is equal and at most 4 KiB otherwise.
	Diff string
	// Paths are the field paths that differ, for a value_diff only (nil
	// for every other class, which noise never applies to), sorted, each
	// written kind:path with the kind of the effects it differs in and
	// the path normalized as PathOf says (ticket:fields.lines[].price), at
	// most MaxPaths of them.
	Paths []string
	// pathsCut is set when more than MaxPaths paths differ: such a
	// value_diff is never noise, since not every path is known.
	pathsCut bool
	// wholeList is set when a path names a whole list element or a whole
	// list: such a value_diff is never noise (see Reclassify).
	wholeList bool
}

// unknownType is the entity type of an event that psa cannot name; its
// effects may be of any kind, as long as both sides agree on the kinds.
const unknownType = "unknown"

// Compare compares the primary (applied) side with the shadow (dry-run)
// side of one event whose entity type is eventType, with rules (nil for
// none). First, effects the new pipeline may add are left out of its side
// (the Side marked New): those of a kind rules.AllowExtraKinds lists, other
// than eventType, that the other side has no effect of. They are left out
// only when the new side keeps an effect of eventType (any effect when
// eventType is "unknown" or empty): an allowed kind adds to the event's own
// effect and never stands in for it, so a ticket event answered with a
// schedule entry instead of the ticket stays a type_mismatch however kinds
// are allowed. Compare then returns exactly one class, checked in this
// order:
//
//  1. shadow_error when the shadow failed (whether or not the primary did:
//     the primary's failure is accounted by delivery); when only the
//     primary failed, primary_error if its pipeline was unavailable (no
//     answer, 429 or 5xx: pipelineclient.Unavailable), which blames neither
//     side's logic, and error_asymmetry if it answered with a refusal;
//  2. type_mismatch when an effect on either side is of another kind than
//     eventType (unless eventType is "unknown" or empty), or when both
//     sides have effects and a kind on one side is not among the other's;
//  3. empty when exactly one side has no effect at all;
//  4. missing when the primary has an effect (kind, key, op) the shadow
//     lacks; extra when the shadow has one the primary lacks;
//  5. value_diff when the effects match but their fields, normalized by
//     rules, differ;
//  6. equal.
//
// Effects are matched by identity whatever their order; an identity that
// appears more than once on a side is matched as many times. Compare never
// changes its arguments and is safe for concurrent use.
func Compare(eventType string, primary, shadow Side, rules *Rules) Result {
	switch {
	case shadow.Err != nil:
		var d diffText
		if primary.Err != nil {
			d.line("primary failed: " + oneLine(primary.Err.Error()))
		}
		d.line("shadow failed: " + oneLine(shadow.Err.Error()))
		return Result{Class: domain.ClassShadowError, Diff: d.String()}
	case primary.Err != nil:
		var d diffText
		d.line("primary failed: " + oneLine(primary.Err.Error()))
		d.line("shadow succeeded: " + effectCount(len(shadow.Effects), "would apply"))
		class := domain.ClassErrorAsymmetry
		if pipelineclient.Unavailable(primary.Err) {
			// The primary's pipeline was down (a legacy outage while the
			// partner is in shadow): a coverage gap, not a finding
			// against the shadow.
			class = domain.ClassPrimaryError
		}
		return Result{Class: class, Diff: d.String()}
	}

	c := comparison{eventType: eventType, rules: rules.trie(eventType), p: sortedEffects(primary.Effects), s: sortedEffects(shadow.Effects)}
	known := eventType != unknownType && eventType != ""
	if rules != nil && len(rules.AllowExtraKinds) > 0 {
		if shadow.New {
			c.s = withoutAllowed(c.s, c.p, eventType, known, rules.AllowExtraKinds)
		}
		if primary.New {
			c.p = withoutAllowed(c.p, c.s, eventType, known, rules.AllowExtraKinds)
		}
	}
	c.match()
	var class domain.Class
	switch {
	case (known && (!allOfKind(c.p, eventType) || !allOfKind(c.s, eventType))) ||
		(!known && len(c.p) > 0 && len(c.s) > 0 && !sameKinds(c.p, c.s)):
		class = domain.ClassTypeMismatch
	case (len(c.p) == 0) != (len(c.s) == 0):
		class = domain.ClassEmpty
	case c.missing > 0:
		class = domain.ClassMissing
	case c.extra > 0:
		class = domain.ClassExtra
	case c.differ > 0:
		class = domain.ClassValueDiff
	default:
		return Result{Class: domain.ClassEqual}
	}
	res := Result{Class: class, Diff: c.diff(known)}
	if class == domain.ClassValueDiff {
		res.Paths, res.pathsCut, res.wholeList = c.paths.sorted(), c.paths.cut, c.paths.whole
	}
	return res
}

// effect is a pipelineclient.Effect in the order Compare matches them, with what
// it was matched with on the other side.
type effect struct {
	kind, key, op string
	fields        map[string]any // as the pipeline sent them: normalized only for the diff
	pair          int            // index of the matched effect on the other side, or -1
	differs       bool           // matched, with other fields
}

func sortedEffects(es []pipelineclient.Effect) []effect {
	if len(es) == 0 {
		return nil
	}
	out := make([]effect, len(es))
	for i, e := range es {
		out[i] = effect{kind: e.Kind, key: e.Key, op: e.Op, fields: e.Fields, pair: -1}
	}
	// Sorted by identity, so that matching is a merge and the diff's lines
	// come in a stable order; stable, so that repeated identities keep the
	// order the pipeline gave them.
	if !slices.IsSortedFunc(out, byIdentity) {
		slices.SortStableFunc(out, byIdentity)
	}
	return out
}

func byIdentity(a, b effect) int {
	if c := cmp.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.op, b.op)
}

// comparison is one Compare call past the error checks.
type comparison struct {
	eventType              string
	rules                  *node
	p, s                   []effect // sorted by identity
	missing, extra, differ int
	paths                  pathSet // of the matched effects whose fields differ
}

// match pairs the primary's effects with the shadow's by identity. Within
// an identity that repeats, equal effects are paired first, then the rest
// in order; what is left over is missing (primary) or extra (shadow).
func (c *comparison) match() {
	i, j := 0, 0
	for i < len(c.p) || j < len(c.s) {
		var o int
		switch {
		case i == len(c.p):
			o = 1
		case j == len(c.s):
			o = -1
		default:
			o = byIdentity(c.p[i], c.s[j])
		}
		if o < 0 {
			c.missing++
			i++
			continue
		}
		if o > 0 {
			c.extra++
			j++
			continue
		}
		ie, je := i+1, j+1
		for ie < len(c.p) && byIdentity(c.p[i], c.p[ie]) == 0 {
			ie++
		}
		for je < len(c.s) && byIdentity(c.s[j], c.s[je]) == 0 {
			je++
		}
		c.pairGroup(i, ie, j, je)
		i, j = ie, je
	}
}

// maxExactPairing bounds the work of pairing equal repeats first: past it
// (a pipeline that repeats one identity hundreds of times), repeats are
// paired in order, which may report a value_diff where a better pairing
// would have found none, but keeps Compare linear.
const maxExactPairing = 1024

func (c *comparison) pairGroup(i, ie, j, je int) {
	if ie-i == 1 && je-j == 1 { // the usual case: one effect per identity
		c.pair(i, j, equalFields(c.p[i].fields, c.s[j].fields, c.rules))
		return
	}
	for a := i; a < ie && (ie-i)*(je-j) <= maxExactPairing; a++ {
		for b := j; b < je; b++ {
			if c.s[b].pair < 0 && equalFields(c.p[a].fields, c.s[b].fields, c.rules) {
				c.pair(a, b, true)
				break
			}
		}
	}
	b := j
	for a := i; a < ie; a++ {
		if c.p[a].pair >= 0 {
			continue
		}
		for b < je && c.s[b].pair >= 0 {
			b++
		}
		if b == je {
			c.missing++
			continue
		}
		c.pair(a, b, false)
	}
	for ; b < je; b++ {
		if c.s[b].pair < 0 {
			c.extra++
		}
	}
}

func (c *comparison) pair(a, b int, equal bool) {
	c.p[a].pair, c.s[b].pair = b, a
	if !equal {
		c.p[a].differs = true
		c.differ++
	}
}

// withoutAllowed returns the new side's effects (sorted by identity, as
// sortedEffects made them) without those an allowance excuses, as step 0
// of Compare says: of an allowed kind other than eventType that the other
// side has none of, and only when an effect of eventType (when known, any
// effect otherwise) stays. Otherwise it returns them all.
func withoutAllowed(side, other []effect, eventType string, known bool, allowed []string) []effect {
	excused := func(e effect) bool {
		return e.kind != eventType && slices.Contains(allowed, e.kind) &&
			!slices.ContainsFunc(other, func(o effect) bool { return o.kind == e.kind })
	}
	kept := make([]effect, 0, len(side))
	own := false
	for _, e := range side {
		if excused(e) {
			continue
		}
		kept = append(kept, e)
		own = own || !known || e.kind == eventType
	}
	if len(kept) == len(side) || !own {
		return side
	}
	return kept
}

func allOfKind(es []effect, kind string) bool {
	for _, e := range es {
		if e.kind != kind {
			return false
		}
	}
	return true
}

// sameKinds reports whether two lists sorted by kind hold the same kinds.
func sameKinds(a, b []effect) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].kind != b[j].kind {
			return false
		}
		k := a[i].kind
		for i < len(a) && a[i].kind == k {
			i++
		}
		for j < len(b) && b[j].kind == k {
			j++
		}
	}
	return i == len(a) && j == len(b)
}

// kinds lists the distinct kinds of a list sorted by kind.
func kinds(es []effect) []string {
	var ks []string
	for _, e := range es {
		if len(ks) == 0 || ks[len(ks)-1] != e.kind {
			ks = append(ks, e.kind)
		}
	}
	return ks
}

// oneLine keeps an error message (which may quote a pipeline's answer) on
// its line of the diff.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
}

func effectCount(n int, verb string) string {
	switch n {
	case 0:
		return verb + " no effect"
	case 1:
		return verb + " 1 effect"
	}
	return verb + " " + strconv.Itoa(n) + " effects"
}
