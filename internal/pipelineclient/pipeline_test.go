package pipelineclient

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
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

// quickRaw takes no answer that encoding/json's reading refuses (Call's
// or CallRaw's), and returns the effects that reading returns.
func FuzzQuickRaw(f *testing.F) {
	for _, s := range []string{
		`{"effects":[{"kind":"ticket","op":"upsert","key":"1","fields":{"a":1,"b":{"c":[null]}}}]}`,
		"{ \"effects\" : [ { \"kind\" : \"t\" , \"fields\" : null } , null ] , \"x\" : [1, {\"y\": \"<&>\"}] }\n",
		`{"effects":[]}`, `{"effects":null}`, `{}`, `null`, `{"effects":[null]}`, `{"effects":[{"fields":null}]}`,
		`{"effects":[{"Fields":{}}]}`, `{"effects":[{"fields":[]}]}`, `{"effects":[{"fields":"x"}]}`, `{"effects":[{"kind":1}]}`,
		`{"effects":{}}`, `{"effects":"x"}`, `{"effects":[1]}`, `[]`, `{"effects":[`, ``, `{"effects":[],"effects":null}`,
		`{"Effects":[]}`, `{"effectſ":[{"kind":1}]}`, `{"\u0065ffects":[1]}`, `{"effects":[{"KIND":1}]}`, `{"effects":[{"kind":"a\u00e9\n"}]}`,
		`{"effects":[{"kind":"t"}]} x`, `{"a":01}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		raw, ok := quickRaw(answer)
		if !ok {
			return
		}
		for _, decode := range []bool{false, true} {
			res, err := readAnswer(200, answer, decode)
			if err != nil {
				t.Fatalf("quickRaw(%q) took it; reading it with decode %v fails: %v", answer, decode, err)
			}
			if !bytes.Equal(res.Raw, raw) {
				t.Fatalf("quickRaw(%q) = %s; reading it with decode %v gives %s", answer, raw, decode, res.Raw)
			}
		}
	})
}

// The body sent is json.Marshal's, whether or not the payload is spliced.
func TestEncodeEventIsJSONMarshal(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, payload := range []string{`{"a":1}`, `{"a": 1}`, `{"h":"<a>"}`, `"payload":0`, `null`, ``, `[1,{"payload":0}]`} {
		ev := Event{ID: "evt_1", Partner: `"payload":0`, PSA: "generic", Type: "ticket", Action: "updated", EntityID: "T-1",
			ReceivedAt: at, Payload: json.RawMessage(payload), Backfill: true, EntityUpdatedAt: &at}
		want, wantErr := json.Marshal(ev)
		got, err := encodeEvent(ev)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("payload %s: encodeEvent = %s, %v; json.Marshal = %s, %v", payload, got, err, want, wantErr)
		}
	}
}

// Answers as encoders commonly write them take the quick path: Go's
// (a newline after, HTML escaped), indented, and unescaped.
func TestQuickRawTakesCommonAnswers(t *testing.T) {
	for _, answer := range []string{
		"{\"effects\":[{\"kind\":\"ticket\",\"op\":\"upsert\",\"key\":\"T-1\",\"fields\":{\"data.notes\":\"\\u003cb\\u003e\",\"n\":1.5}}]}\n",
		"{\n  \"effects\": [\n    {\n      \"kind\": \"ticket\",\n      \"op\": \"delete\",\n      \"key\": \"T-1\",\n      \"fields\": null\n    }\n  ]\n}",
		`{"effects":[{"kind":"ticket","op":"upsert","key":"T-1","fields":{"s":"<a> & é"}}],"requestId":"r-1"}`,
		`{"effects":[]}`, `{}`,
	} {
		if _, ok := quickRaw([]byte(answer)); !ok {
			t.Errorf("quickRaw(%s) = false, want it taken", answer)
		}
	}
}
