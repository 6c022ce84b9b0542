package compare

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

const (
	// maxDiff caps Result.Diff: the control service stores diffs per
	// partner, event type and class, and a diff is read, not processed.
	maxDiff = 4 << 10
	// maxLine caps one line of the diff, maxValue one value on a line.
	maxLine  = 1 << 10
	maxValue = 256
)

// diff explains a comparison that did not come out equal, one finding a
// line, in this order: effects of the wrong kind, an empty side, missing
// and extra effects (with their fields), then, from go-cmp, each differing
// field of the effects that match.
func (c *comparison) diff(known bool) string {
	var d diffText
	if known {
		for _, side := range []struct {
			name string
			es   []effect
		}{{"primary", c.p}, {"shadow", c.s}} {
			for _, e := range side.es {
				if e.kind != c.eventType {
					d.line("type: event " + quoteIfOdd(c.eventType) + ", " + side.name + " effect " + ident(e))
				}
			}
		}
	} else if len(c.p) > 0 && len(c.s) > 0 {
		kp, ks := kinds(c.p), kinds(c.s)
		for _, k := range ks {
			if !slices.Contains(kp, k) {
				d.line("type: event " + quoteIfOdd(c.eventType) + ", shadow effects of kind " + quoteIfOdd(k) + ", the primary's are of kind " + kindList(kp))
			}
		}
		for _, k := range kp {
			if !slices.Contains(ks, k) {
				d.line("type: event " + quoteIfOdd(c.eventType) + ", primary effects of kind " + quoteIfOdd(k) + ", the shadow's are of kind " + kindList(ks))
			}
		}
	}
	switch {
	case len(c.p) > 0 && len(c.s) == 0:
		d.line("empty: the primary " + effectCount(len(c.p), "applied") + ", the shadow none")
	case len(c.p) == 0 && len(c.s) > 0:
		d.line("empty: the primary applied none, the shadow " + effectCount(len(c.s), "would apply"))
	}
	for _, e := range c.p {
		if e.pair < 0 {
			d.line("missing: " + ident(e) + " " + renderFields(e.fields, c.rules))
		}
	}
	for _, e := range c.s {
		if e.pair < 0 {
			d.line("extra: " + ident(e) + " " + renderFields(e.fields, c.rules))
		}
	}
	for _, e := range c.p {
		if !e.differs {
			continue
		}
		x, y := differentFields(e.fields, c.s[e.pair].fields, c.rules)
		if d.cut > 0 {
			// Full: no more lines, just count; but the paths are still
			// wanted, or a long diff could never be found to be noise.
			d.cut++
			cmp.Equal(x, y, cmp.Reporter(&reporter{kind: e.kind, paths: &c.paths}))
			continue
		}
		r := &reporter{prefix: ident(e) + " ", kind: e.kind, d: &d, paths: &c.paths}
		if cmp.Equal(x, y, cmp.Reporter(r)) || r.lines == 0 {
			// equalFields and go-cmp disagree: never expected (the fuzz
			// test checks), but a value_diff must never come with no line,
			// nor with no path (and "fields" is noise only if pinned).
			d.line(ident(e) + " fields: primary " + render(x) + " → shadow " + render(y))
			c.paths.add(e.kind, "fields")
		}
	}
	return d.String()
}

// differentFields returns the fields of x and y, normalized, that are not
// equal (absent on one side included). Leaving out the equal ones, which
// go-cmp would only walk to find nothing, more than halves its time; go-cmp
// still finds the paths that differ inside each field.
func differentFields(x, y map[string]any, n *node) (dx, dy map[string]any) {
	dx, dy = map[string]any{}, map[string]any{}
	if n != nil && n.ignore {
		return dx, dy
	}
	for k, v := range x {
		kid := n.child(k)
		if kid != nil && kid.ignore {
			continue
		}
		if w, ok := y[k]; !ok || !equalRaw(v, w, kid) {
			dx[k] = normalize(v, kid)
			if ok {
				dy[k] = normalize(w, kid)
			}
		}
	}
	for k, w := range y {
		if _, ok := x[k]; ok {
			continue
		}
		if kid := n.child(k); kid == nil || !kid.ignore {
			dy[k] = normalize(w, kid)
		}
	}
	return dx, dy
}

// reporter is a go-cmp Reporter that writes one line per differing leaf:
// the path and both values (none when d is nil), and adds the leaf's path,
// as PathOf writes it, under the effects' kind, to paths.
type reporter struct {
	prefix string
	kind   string
	d      *diffText
	paths  *pathSet
	path   cmp.Path
	lines  int
}

func (r *reporter) PushStep(ps cmp.PathStep) { r.path = append(r.path, ps) }
func (r *reporter) PopStep()                 { r.path = r.path[:len(r.path)-1] }

func (r *reporter) Report(rs cmp.Result) {
	if rs.Equal() {
		return
	}
	r.lines++
	p := PathOf(fieldPath(r.path))
	vx, vy := r.path.Last().Values()
	r.paths.add(r.kind, p)
	if wholeList(p, vx, vy) {
		r.paths.whole = true
	}
	if r.d == nil {
		return
	}
	r.d.line(r.prefix + fieldPath(r.path) + ": primary " + show(vx) + " → shadow " + show(vy))
}

// fieldPath renders a go-cmp path into an effect's fields as
// fields.a.b[2], quoting names that are not plain identifiers. A name with
// dots is left bare: written so, the path works as an ignore rule whether
// the pipeline nested the object or flattened its keys.
func fieldPath(p cmp.Path) string {
	var b strings.Builder
	b.WriteString("fields")
	for _, st := range p {
		switch s := st.(type) {
		case cmp.MapIndex:
			k := s.Key().String()
			if plainName(k) {
				b.WriteByte('.')
				b.WriteString(k)
			} else {
				b.WriteByte('[')
				b.WriteString(strconv.Quote(k))
				b.WriteByte(']')
			}
		case cmp.SliceIndex:
			ix, iy := s.SplitKeys()
			if ix < 0 {
				ix = iy
			}
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(ix))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// plainName reports whether a field name reads unambiguously after a dot.
func plainName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r != '_' && r != '-' && r != '.' && r != '$' && r != '@' &&
			!(r >= 'a' && r <= 'z') && !(r >= 'A' && r <= 'Z') && !(r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// kindList lists kinds for a type line.
func kindList(ks []string) string {
	q := make([]string, len(ks))
	for i, k := range ks {
		q[i] = quoteIfOdd(k)
	}
	return strings.Join(q, ", ")
}

// ident names an effect as kind/key op, the way the diff shows it.
func ident(e effect) string {
	return quoteIfOdd(e.kind) + "/" + quoteIfOdd(e.key) + " " + quoteIfOdd(e.op)
}

// quoteIfOdd quotes names that would be hard to read bare: empty ones,
// ones with spaces, slashes or control characters.
func quoteIfOdd(s string) string {
	if s == "" || len(s) > 100 {
		return strconv.Quote(clip(s, 100))
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == '"' || r == 0x7f || r == utf8.RuneError || r == '→' {
			return strconv.Quote(s)
		}
	}
	return s
}

// show renders one side's value at a differing path.
func show(v reflect.Value) string {
	if !v.IsValid() {
		return "(absent)"
	}
	if !v.CanInterface() {
		return v.String()
	}
	return render(v.Interface())
}

// renderFields writes an effect's fields as render would write them
// normalized under n, without the normalized copy: ignored fields are left
// out, lists are shown in the order sent.
func renderFields(f map[string]any, n *node) string {
	if len(f) == 0 || (n != nil && n.ignore) {
		return "{}"
	}
	return clip(string(appendRaw(make([]byte, 0, 256), f, n)), maxValue)
}

func appendRaw(b []byte, v any, n *node) []byte {
	if len(b) > maxValue {
		return b // clipped anyway
	}
	switch x := v.(type) {
	case string:
		return strconv.AppendQuote(b, clip(x, maxValue)) // a time is shown as sent, too
	case []any:
		if x == nil {
			break
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRaw(b, e, n)
		}
		return append(b, ']')
	case map[string]any:
		if x == nil {
			break
		}
		b = append(b, '{')
		first := true
		for _, k := range sortedKeys(x) {
			kid := n.child(k)
			if kid != nil && kid.ignore {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = strconv.AppendQuote(b, clip(k, maxValue))
			b = append(b, ':')
			b = appendRaw(b, x[k], kid)
		}
		return append(b, '}')
	}
	return appendValue(b, normalize(v, n))
}

// render writes a normalized value as compact JSON (times as sent), cut
// at maxValue bytes.
func render(v any) string {
	return clip(string(appendValue(make([]byte, 0, 128), v)), maxValue)
}

func appendValue(b []byte, v any) []byte {
	if len(b) > maxValue {
		return b // clipped anyway
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		switch {
		case math.IsInf(x, 1):
			return append(b, "+Inf"...)
		case math.IsInf(x, -1):
			return append(b, "-Inf"...)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case notANumber:
		return append(b, "NaN"...)
	case string:
		return strconv.AppendQuote(b, clip(x, maxValue))
	case instant:
		return strconv.AppendQuote(b, x.s)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		return append(b, ']')
	case map[string]any:
		b = append(b, '{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, clip(k, maxValue))
			b = append(b, ':')
			b = appendValue(b, x[k])
		}
		return append(b, '}')
	}
	return strconv.AppendQuote(b, reflect.TypeOf(v).String())
}

// clip cuts s to at most n bytes, on a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

// diffText builds a Result.Diff, line by line, within maxDiff.
type diffText struct {
	b   strings.Builder
	cut int // findings left out: lines, or effects not diffed once full
}

// cutNoteRoom is room kept for the note that says lines were left out.
const cutNoteRoom = 80

func (d *diffText) line(s string) {
	s = clip(s, maxLine)
	if d.cut > 0 || d.b.Len()+1+len(s) > maxDiff-cutNoteRoom {
		d.cut++
		return
	}
	if d.b.Len() > 0 {
		d.b.WriteByte('\n')
	}
	d.b.WriteString(s)
}

func (d *diffText) String() string {
	if d.cut > 0 {
		d.b.WriteString("\n… " + strconv.Itoa(d.cut) + " more finding(s) left out: a diff is capped at 4 KiB")
	}
	return d.b.String()
}
