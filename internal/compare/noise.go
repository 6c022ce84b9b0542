package compare

import (
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
}

func (s *pathSet) add(p string) {
	if s == nil || slices.Contains(s.list, p) {
		return
	}
	if len(s.list) == MaxPaths {
		s.cut = true
		return
	}
	s.list = append(s.list, p)
}

func (s *pathSet) sorted() []string {
	if len(s.list) == 0 {
		return nil
	}
	out := slices.Clone(s.list)
	slices.Sort(out)
	return out
}

// Reclassify returns r as noise when it is a value_diff every one of
// whose differing paths isNoise says is noise; otherwise r unchanged. The
// diff and the paths are kept, so that noise is shown like any sample.
// Only a value_diff can become noise: a type_mismatch, missing, extra,
// empty, error_asymmetry or any error has no paths, whatever the fields,
// because what it says (a wrong kind, a lost or added effect, a failure)
// is never a field's noise. A value_diff with more than MaxPaths paths,
// or none, stays one.
func Reclassify(r Result, isNoise func(path string) bool) Result {
	if r.Class != domain.ClassValueDiff || len(r.Paths) == 0 || r.pathsCut {
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
