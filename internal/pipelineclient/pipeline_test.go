package pipelineclient

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// CallRaw refuses exactly the answers Call refuses, and returns the same
// raw effects, without the decoded ones.
func TestCallRawChecksAsCallDoes(t *testing.T) {
	for _, answer := range []string{
		`{"effects":[{"kind":"ticket","op":"upsert","key":"1","fields":{"a":1,"b":{"c":[null]}}}]}`,
		`{"effects":[]}`, `{"effects":null}`, `{}`, `null`, `{"effects":[null]}`,
		`{"effects":[{"fields":null}]}`, `{"effects":[{"Fields":{}}]}`,
		`{"effects":[{"fields":[]}]}`, `{"effects":[{"fields":"x"}]}`, `{"effects":[{"fields":1}]}`,
		`{"effects":[{"kind":1}]}`, `{"effects":{}}`, `{"effects":"x"}`, `{"effects":[1]}`, `[]`, `{"effects":[`, ``,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(answer))
		}))
		c := &Client{}
		full, fullErr := c.Call(t.Context(), srv.URL, Apply, Event{ID: "evt_1"})
		raw, rawErr := c.CallRaw(t.Context(), srv.URL, Apply, Event{ID: "evt_1"})
		srv.Close()
		if (fullErr != nil) != (rawErr != nil) {
			t.Errorf("answer %s: Call's error %v, CallRaw's %v", answer, fullErr, rawErr)
			continue
		}
		if fullErr != nil {
			if fullErr.Error() != rawErr.Error() {
				t.Errorf("answer %s: Call's error %q, CallRaw's %q", answer, fullErr, rawErr)
			}
			continue
		}
		if !reflect.DeepEqual(full.Raw, raw.Raw) || raw.Effects != nil {
			t.Errorf("answer %s: Call's raw %s, CallRaw's %s with effects %v", answer, full.Raw, raw.Raw, raw.Effects)
		}
	}
}

// A long answer is read whole, whether or not it declares its length.
func TestCallReadsALongAnswer(t *testing.T) {
	long := `{"effects":[{"kind":"ticket","op":"upsert","key":"` + strings.Repeat("k", 100_000) + `"}]}`
	for _, chunked := range []bool{false, true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if chunked {
				w.Write([]byte(long[:10]))
				w.(http.Flusher).Flush()
				w.Write([]byte(long[10:]))
				return
			}
			w.Write([]byte(long))
		}))
		res, err := (&Client{}).Call(t.Context(), srv.URL, Apply, Event{ID: "evt_1"})
		srv.Close()
		if err != nil || len(res.Effects) != 1 || len(res.Effects[0].Key) != 100_000 {
			t.Fatalf("chunked %v: %v, %d effects", chunked, err, len(res.Effects))
		}
	}
}

// BenchmarkDecodeAnswer measures reading a pipeline's answer of one effect
// with 40 fields (~1.3 KiB, as the reference pipeline answers), decoded
// (Call) and only checked (CallRaw). One goroutine: ns/op is CPU.
//
//	go test -run '^$' -bench BenchmarkDecodeAnswer -cpu 1 ./internal/pipelineclient/
func BenchmarkDecodeAnswer(b *testing.B) {
	var f strings.Builder
	for i := range 40 {
		if i > 0 {
			f.WriteByte(',')
		}
		f.WriteString(`"field` + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + `":"` + strings.Repeat("v", 20) + `"`)
	}
	answer := []byte(`{"effects":[{"kind":"ticket","op":"upsert","key":"T-1","fields":{` + f.String() + `}}]}`)
	for _, decode := range []bool{true, false} {
		name := "decoded"
		if !decode {
			name = "checked"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(answer)))
			for b.Loop() {
				if _, err := decodeAnswer(200, answer, decode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
