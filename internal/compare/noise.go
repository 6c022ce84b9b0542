package compare

import (
	"reflect"
	"slices"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
)

// MaxPaths bounds Result.Paths: a value_diff with more differing paths
// than this is never noise.
const MaxPaths = 64

// PathOf normalizes a field path as the diff writes it (fields.a.b[2])
// into the form noise is learned and pinned under: every list index
// becomes [] (fields.lines[].price), so that a path names a field of
// every element, and a list whose length varies does not yield a path per
// index. Names of fields, quoted or not, are kept as written.
func PathOf(diffPath string) string {
	if !strings.Contains(diffPath, "[") {
		return diffPath
	}
	var b strings.Builder
	for i := 0; i < len(diffPath); i++ {
		ch := diffPath[i]
		switch {
		case ch == '"':
			// A quoted name, ["…"], kept whole: it may hold brackets.
			j := i + 1
			for j < len(diffPath) && diffPath[j] != '"' {
				if diffPath[j] == '\\' {
					j++
				}
				j++
			}
			b.WriteString(diffPath[i:min(j+1, len(diffPath))])
			i = j
		case ch == '[' && i+1 < len(diffPath) && diffPath[i+1] >= '0' && diffPath[i+1] <= '9':
			j := i + 1
			for j < len(diffPath) && diffPath[j] >= '0' && diffPath[j] <= '9' {
				j++
			}
			if j < len(diffPath) && diffPath[j] == ']' {
				b.WriteString("[]")
				i = j
				continue
			}
			b.WriteByte(ch)
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// pathSet collects the distinct paths of one comparison, up to MaxPaths.
type pathSet struct {
	list []string
	cut  bool
	// whole is set when a path names a whole list element or a whole
	// list (see wholeList): such a value_diff is never noise.
	whole bool
}

// add adds the path p of an effect of kind, written kind:p so that noise
// of one kind of effect never excuses the same field of another.
func (s *pathSet) add(kind, p string) {
	if s == nil {
		return
	}
	p = kind + ":" + p
	if slices.Contains(s.list, p) {
		return
	}
	if len(s.list) == MaxPaths {
		s.cut = true
		return
	}
	s.list = append(s.list, p)
}

// wholeList reports whether a differing path p, as PathOf writes it,
// with the values x and y found there, is about a whole list element or a
// whole list rather than a field inside elements. go-cmp reports an
// element that one side lacks (a list whose length differs), or that
// differs entirely (a reordered list, a primitive element), at the
// element's index, fields.lines[2], which PathOf writes fields.lines[]; and
// a list that one side lacks or holds as another type at the list's own
// path, fields.lines. Both can hide a lost or added line item, so neither
// is learned nor excuses a value_diff: a legacy that reorders a list is
// what compare.sets is for.
func wholeList(p string, x, y reflect.Value) bool {
	return strings.HasSuffix(p, "[]") || isList(x) || isList(y)
}

func isList(v reflect.Value) bool {
	for v.IsValid() && v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	return v.IsValid() && (v.Kind() == reflect.Slice || v.Kind() == reflect.Array)
}

func (s *pathSet) sorted() []string {
	if len(s.list) == 0 {
		return nil
	}
	out := slices.Clone(s.list)
	slices.Sort(out)
	return out
}

// NoisePaths returns the paths of r that may be learned as noise: its
// Paths, unless one of them names a whole list element or a whole list
// (then none, since such a comparison is never noise anyway).
func (r Result) NoisePaths() []string {
	if r.wholeList {
		return nil
	}
	return r.Paths
}

// Reclassify returns r as noise when it is a value_diff every one of
// whose differing paths isNoise says is noise; otherwise r unchanged. The
// diff and the paths are kept, so that noise is shown like any sample.
// Only a value_diff can become noise: a type_mismatch, missing, extra,
// empty, error_asymmetry or any error has no paths, whatever the fields,
// because what it says (a wrong kind, a lost or added effect, a failure)
// is never a field's noise. A value_diff with more than MaxPaths paths,
// or none, stays one, and so does one where a whole list element or a
// whole list differs (an element lost, added or replaced), whatever the
// pins: only fields inside elements (fields.lines[].price) can be noise.
func Reclassify(r Result, isNoise func(path string) bool) Result {
	if r.Class != domain.ClassValueDiff || len(r.Paths) == 0 || r.pathsCut || r.wholeList {
		return r
	}
	for _, p := range r.Paths {
		if !isNoise(p) {
			return r
		}
	}
	r.Class = domain.ClassNoise
	return r
}
