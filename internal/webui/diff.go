package webui

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// jsonLine is one line of a pretty-printed JSON value.
type jsonLine struct {
	Indent  int
	Text    string
	Path    string // the path of the value the line starts or ends
	Changed bool   // the value at Path differs from the other side
}

// jsonDiff is two JSON values side by side with the paths that differ.
type jsonDiff struct {
	Paths       []string
	Left, Right []jsonLine
}

// diffJSON compares two JSON values and prints both with the differing
// values marked. A side that is not valid JSON is shown as it is.
func diffJSON(left, right json.RawMessage) jsonDiff {
	a, okA := decodeJSON(left)
	b, okB := decodeJSON(right)
	var d jsonDiff
	if okA && okB {
		diffPaths(a, b, "", &d.Paths)
	} else if !bytes.Equal(left, right) {
		d.Paths = []string{""}
	}
	changed := map[string]bool{}
	for _, p := range d.Paths {
		changed[p] = true
	}
	d.Left, d.Right = jsonLines(left, changed), jsonLines(right, changed)
	return d
}

// jsonLines pretty-prints raw, marking the lines of the values whose path,
// or an ancestor's, is in changed.
func jsonLines(raw json.RawMessage, changed map[string]bool) []jsonLine {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	v, ok := decodeJSON(raw)
	if !ok {
		return []jsonLine{{Text: string(raw), Changed: changed[""]}}
	}
	var out []jsonLine
	printJSON(v, "", "", 0, true, false, changed, &out)
	return out
}

func decodeJSON(raw json.RawMessage) (any, bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return v, true
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// diffPaths appends the paths at which a and b differ: the shallowest
// path of each difference.
func diffPaths(a, b any, path string, out *[]string) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, path)
			return
		}
		keys := slices.Sorted(maps.Keys(x))
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			va, inA := x[k]
			vb, inB := y[k]
			if !inA || !inB {
				*out = append(*out, joinKey(path, k))
				continue
			}
			diffPaths(va, vb, joinKey(path, k), out)
		}
	case []any:
		y, ok := b.([]any)
		if !ok {
			*out = append(*out, path)
			return
		}
		for i := range max(len(x), len(y)) {
			if i >= len(x) || i >= len(y) {
				*out = append(*out, joinIndex(path, i))
				continue
			}
			diffPaths(x[i], y[i], joinIndex(path, i), out)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, path)
		}
	}
}

// printJSON appends the lines of v. key is its name in the enclosing
// object ("" otherwise); hot is whether an ancestor changed.
func printJSON(v any, key, path string, indent int, last, hot bool, changed map[string]bool, out *[]jsonLine) {
	hot = hot || changed[path]
	prefix := ""
	if key != "" {
		prefix = quoteJSON(key) + ": "
	}
	comma := ","
	if last {
		comma = ""
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			*out = append(*out, jsonLine{Indent: indent, Text: prefix + "{}" + comma, Path: path, Changed: hot})
			return
		}
		*out = append(*out, jsonLine{Indent: indent, Text: prefix + "{", Path: path, Changed: hot})
		keys := slices.Sorted(maps.Keys(x))
		for i, k := range keys {
			printJSON(x[k], k, joinKey(path, k), indent+1, i == len(keys)-1, hot, changed, out)
		}
		*out = append(*out, jsonLine{Indent: indent, Text: "}" + comma, Path: path, Changed: hot})
	case []any:
		if len(x) == 0 {
			*out = append(*out, jsonLine{Indent: indent, Text: prefix + "[]" + comma, Path: path, Changed: hot})
			return
		}
		*out = append(*out, jsonLine{Indent: indent, Text: prefix + "[", Path: path, Changed: hot})
		for i, e := range x {
			printJSON(e, "", joinIndex(path, i), indent+1, i == len(x)-1, hot, changed, out)
		}
		*out = append(*out, jsonLine{Indent: indent, Text: "]" + comma, Path: path, Changed: hot})
	default:
		*out = append(*out, jsonLine{Indent: indent, Text: prefix + marshalJSON(x) + comma, Path: path, Changed: hot})
	}
}

func quoteJSON(s string) string { return marshalJSON(s) }

// marshalJSON writes a scalar as JSON without HTML escapes: the template
// escapes for HTML, and "<" should read as "<", not "\u003c".
func marshalJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// pad is the indentation of a jsonLine.
func pad(n int) string { return strings.Repeat("  ", n) }
