package rawjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// seeds are documents at the edges of JSON's grammar and of what
// json.Marshal writes.
var seeds = []string{
	`{"a":1}`, `[1,2.5e-3,-0,"x",true,false,null,{},[]]`, `{"a": 1}`, " [1] ", "\t{\r\n\"a\" :\n[ 1 , 2 ] }\n", `"<&>"`, `"\u2028"`,
	"\"\u2028\u2029\"", `"\"\\\/\b\f\n\r\t\u00e9\uD834"`, `"\x"`, `"\u12"`, `01`, `1.`, `1e`, `-`, `1.5E+10`, `tru`, `nul`,
	`{"a":}`, `{"a"1}`, `[1,]`, `{,}`, `{"a":1,}`, `"abc`, "\"a\x01\"", `[` + strings.Repeat(`[`, 1100) + strings.Repeat(`]`, 1101),
	`1 2`, `{}x`, "\"\xff\xfe\"", `{"a":[{"b":{"c":"d"}}],"e":-12.34e+5}`, ``, ` `, `[ ]`, `{ }`, `[1 ,]`, `{"a" : 1 , }`,
}

// Valid never takes what json.Valid refuses, and takes every document
// it follows (up to 1,000 levels deep) that json.Valid takes.
func FuzzValid(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, want := Valid(in), json.Valid(in)
		if got && !want {
			t.Fatalf("Valid(%q) = true; json.Valid refuses it", in)
		}
		if !got && want && bytes.Count(in, []byte("[")) < maxDepth && bytes.Count(in, []byte("{")) < maxDepth {
			t.Fatalf("Valid(%q) = false; json.Valid takes it", in)
		}
	})
}

// A storable document is what json.Marshal writes for it, unchanged.
func FuzzStorable(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !Storable(in) {
			return
		}
		want, err := json.Marshal(json.RawMessage(in))
		if err != nil || !bytes.Equal(in, want) {
			t.Fatalf("Storable(%q), but json.Marshal writes %q, %v", in, want, err)
		}
	})
}

// What json.Marshal wrote takes the quick path.
func TestMarshalledJSONIsStorable(t *testing.T) {
	v, _ := json.Marshal(map[string]any{"type": "ticket.updated", "n": -1.5e300, "z": 0, "ok": true, "no": nil,
		"data": map[string]any{"id": "T-1", "s": "é \" \\ \n \u00e9 \x01 <a>", "list": []any{1, "two", []any{}, map[string]any{}}}})
	if !Storable(v) || !Valid(v) {
		t.Fatalf("Storable(%s) = %v, Valid = %v; want both true", v, Storable(v), Valid(v))
	}
}

func TestString(t *testing.T) {
	for _, tt := range []struct {
		in          string
		end         int
		escaped, ok bool
	}{
		{`"abc",`, 5, false, true},
		{`"a\"b"`, 6, true, true},
		{`"a\u00e9"`, 9, true, true},
		{`"<&>"`, 5, false, true},
		{`"abc`, 4, false, false},
		{"\"a\tb\"", 2, false, false},
		{`"a\x"`, 2, true, false},
	} {
		end, escaped, ok := String([]byte(tt.in), 0)
		if ok != tt.ok || escaped != tt.escaped || ok && end != tt.end {
			t.Errorf("String(%s) = %d, %v, %v; want %d, %v, %v", tt.in, end, escaped, ok, tt.end, tt.escaped, tt.ok)
		}
	}
}

func TestCut(t *testing.T) {
	for _, tt := range []struct {
		v, key        string
		before, after string
		ok            bool
	}{
		{`{"id":"x","payload":0,"n":1}`, `"payload":`, `{"id":"x","payload":`, `,"n":1}`, true},
		{`{"id":"x","payload":0}`, `"payload":`, `{"id":"x","payload":`, `}`, true},
		{`{"id":"\"payload\":0,","payload":0}`, `"payload":`, `{"id":"\"payload\":0,","payload":`, `}`, true}, // not within the string
		{`{"payload":01}`, `"payload":`, ``, ``, false},
		{`{"payload":"0"}`, `"payload":`, ``, ``, false},
		{`{"payload":0`, `"payload":`, ``, ``, false},
		{`{"effects":0}`, `"payload":`, ``, ``, false},
	} {
		before, after, ok := Cut([]byte(tt.v), []byte(tt.key))
		if ok != tt.ok || string(before) != tt.before || string(after) != tt.after {
			t.Errorf("Cut(%s, %s) = %q, %q, %v; want %q, %q, %v", tt.v, tt.key, before, after, ok, tt.before, tt.after, tt.ok)
		}
	}
}
