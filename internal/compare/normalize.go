package compare

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Normalized values are what Compare and go-cmp look at. normalize brings
// every field value to one of these types, so that values which mean the
// same on the wire compare equal:
//
//	nil, bool, string        as decoded
//	int64                    every integral number that fits, whatever its Go type
//	float64                  every other number (±Inf included)
//	notANumber               NaN, equal to itself unlike float64 NaN
//	instant                  a string that parses as RFC 3339, compared as an instant
//	[]any, map[string]any    lists and objects, normalized inside
//
// Typed nil maps, slices and pointers become nil, as JSON would send them.
type (
	// instant is an RFC 3339 time; s is the text as sent, for the diff.
	instant struct {
		t time.Time
		s string
	}
	notANumber struct{}
)

// Equal makes go-cmp compare instants as instants (go-cmp calls an Equal
// method when a type has one).
func (a instant) Equal(b instant) bool { return a.t.Equal(b.t) }

// normFields normalizes an effect's fields under the path trie n. Empty
// fields, and fields all ignored, are nil: "fields" is omitempty on the wire.
func normFields(f map[string]any, n *node) map[string]any {
	if len(f) == 0 || (n != nil && n.ignore) {
		return nil
	}
	m := normMap(f, n)
	if len(m) == 0 {
		return nil
	}
	return m
}

func normMap(f map[string]any, n *node) map[string]any {
	m := make(map[string]any, len(f))
	for k, v := range f {
		kid := n.child(k)
		if kid != nil && kid.ignore {
			continue
		}
		m[k] = normalize(v, kid)
	}
	return m
}

// normalize returns v normalized, with n the path trie node at v (nil when
// no rule reaches below). It never changes v.
func normalize(v any, n *node) any {
	switch x := v.(type) {
	case nil, bool:
		return x
	case string:
		if looksLikeTime(x) {
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return instant{t: t, s: x}
			}
		}
		return x
	case float64:
		return normFloat(x)
	case json.Number:
		return normNumber(string(x))
	case map[string]any:
		if x == nil {
			return nil
		}
		return normMap(x, n)
	case []any:
		if x == nil {
			return nil
		}
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normalize(e, n) // a path goes through lists: n applies to each element
		}
		if n != nil && n.set {
			slices.SortFunc(s, order)
		}
		return s
	case int:
		return int64(x)
	case int64:
		return x
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint:
		return normUint(uint64(x))
	case uint64:
		return normUint(x)
	case uint32:
		return int64(x)
	case uint16:
		return int64(x)
	case uint8:
		return int64(x)
	case float32:
		return normFloat(float64(x))
	case time.Time:
		return instant{t: x, s: x.Format(time.RFC3339Nano)}
	case json.RawMessage:
		var d any
		if decodeNumbers(x, &d) != nil {
			return string(x)
		}
		return normalize(d, n)
	}
	return normReflect(v, n)
}

// normReflect handles values built in Go rather than decoded from JSON
// ([]string, map[string]int, structs…): lists and string-keyed maps are
// walked, anything else is compared as its JSON encoding would be.
func normReflect(v any, n *node) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return normalize(rv.Elem().Interface(), n)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			break // []byte: JSON sends it as base64 text
		}
		s := make([]any, rv.Len())
		for i := range s {
			s[i] = rv.Index(i).Interface()
		}
		return normalize(s, n)
	case reflect.Map:
		if rv.IsNil() {
			return nil
		}
		if rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				m[it.Key().String()] = it.Value().Interface()
			}
			return normalize(m, n)
		}
	case reflect.String:
		return normalize(rv.String(), n)
	case reflect.Bool:
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return normUint(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return normFloat(rv.Float())
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "(" + rv.Type().String() + ")" // not JSON: a func, a channel…
	}
	return normalize(json.RawMessage(b), n)
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// normFloat makes integral floats int64, so 1.0 equals 1.
func normFloat(f float64) any {
	switch {
	case f != f:
		return notANumber{}
	case f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63:
		return int64(f)
	}
	return f
}

func normUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return normFloat(float64(u))
}

// normNumber reads a json.Number: exactly when it is an integer that fits
// in int64, else as float64; text that is no number stays text.
func normNumber(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return s
	}
	return normFloat(f)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// looksLikeTime is a cheap test before time.Parse: 2006-01-02T15:04:05…
func looksLikeTime(s string) bool {
	return len(s) >= 20 && len(s) <= 40 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') && s[13] == ':'
}

// equalFields reports whether two effects' fields are equal once
// normalized under the path trie n: equal(normFields(x, n), normFields(y,
// n)), without building the normalized copies in the usual cases (most
// events compare equal, and copying is most of the cost). go-cmp, much
// slower still, runs only to explain a difference. The fuzz test checks
// that all three agree.
func equalFields(x, y map[string]any, n *node) bool {
	if n != nil && n.ignore {
		return true
	}
	return equalMap(x, y, n) // nil and empty fields both have no field
}

func equalMap(x, y map[string]any, n *node) bool {
	if n == nil || n.kids == nil { // no rule below this point
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalRaw(v, w, nil) {
				return false
			}
		}
		return true
	}
	nx := 0
	for k, v := range x {
		kid := n.child(k)
		if kid != nil && kid.ignore {
			continue
		}
		nx++
		w, ok := y[k]
		if !ok || !equalRaw(v, w, kid) {
			return false
		}
	}
	// Every field of x kept is in y: the key sets are the same when y
	// keeps as many.
	ny := 0
	for k := range y {
		if kid := n.child(k); kid == nil || !kid.ignore {
			ny++
		}
	}
	return nx == ny
}

// equalRaw is equal(normalize(a, n), normalize(b, n)), normalizing only
// what it cannot decide on the spot.
func equalRaw(a, b any, n *node) bool {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			if x == y {
				return true
			}
			if !looksLikeTime(x) || !looksLikeTime(y) {
				return false
			}
		}
	case float64:
		if y, ok := b.(float64); ok {
			return x == y || (x != x && y != y) // NaN equals NaN here
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	case nil:
		if b == nil {
			return true
		}
	case map[string]any:
		if y, ok := b.(map[string]any); ok && x != nil && y != nil {
			return equalMap(x, y, n)
		}
	case []any:
		if y, ok := b.([]any); ok && x != nil && y != nil {
			if len(x) != len(y) {
				return false
			}
			same := true
			for i := range x {
				if !equalRaw(x[i], y[i], n) {
					same = false
					break
				}
			}
			if same || n == nil || !n.set {
				return same // a set in the same order is the same set
			}
		}
	}
	return equal(normalize(a, n), normalize(b, n))
}

// equal reports whether two normalized values are equal.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case instant:
		y, ok := b.(instant)
		return ok && x.t.Equal(y.t)
	case notANumber:
		_, ok := b.(notANumber)
		return ok
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && equalMaps(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return false // normalize makes no other type
}

func equalMaps(x, y map[string]any) bool {
	if len(x) != len(y) || (x == nil) != (y == nil) {
		return false
	}
	for k, v := range x {
		w, ok := y[k]
		if !ok || !equal(v, w) {
			return false
		}
	}
	return true
}

// order is a total order on normalized values, consistent with equal
// (order(a, b) == 0 exactly when equal(a, b)), so that sorting two lists
// that hold the same values in any order gives lists that compare equal.
func order(a, b any) int {
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
		if c := cmp.Compare(float64(x), b.(float64)); c != 0 {
			return c
		}
		return -1
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
		if c := cmp.Compare(x, float64(b.(int64))); c != 0 {
			return c
		}
		return 1
	case string:
		return strings.Compare(x, b.(string))
	case instant:
		return x.t.Compare(b.(instant).t)
	case []any:
		y := b.([]any)
		for i := 0; i < len(x) && i < len(y); i++ {
			if c := order(x[i], y[i]); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(x), len(y))
	case map[string]any:
		y := b.(map[string]any)
		kx, ky := sortedKeys(x), sortedKeys(y)
		if c := slices.Compare(kx, ky); c != 0 {
			return c
		}
		for _, k := range kx {
			if c := order(x[k], y[k]); c != 0 {
				return c
			}
		}
	}
	return 0 // nil, notANumber
}

func rank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case int64, float64:
		return 2
	case notANumber:
		return 3
	case string:
		return 4
	case instant:
		return 5
	case []any:
		return 6
	}
	return 7 // map[string]any
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
