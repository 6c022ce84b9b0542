package journal

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/rawjson"
)

// The journal's codec must store what json.Marshal stores and read what
// json.Unmarshal reads, for every shape of event.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tricky := json.RawMessage(`{"payload":0,"effects":0,"s":"\"payload\":0 } ] \\","a":[1,{"b":null}],"n":-1.5e3}`)
	for name, e := range map[string]Event{
		"empty":               {},
		"payload":             {Seq: 1, ID: "evt_1", Partner: "p", Payload: json.RawMessage(`{"a":1}`)},
		"null payload":        {Seq: 2, Payload: json.RawMessage(`null`)},
		"payload and effects": {Seq: 3, Payload: tricky, Effects: json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"1","fields":{"x":"}"}}]`), State: StateApplied, Attempts: 1, Pipeline: "legacy", SnapshotVersion: 7, DoneAt: at},
		"effects alone":       {Seq: 4, Effects: json.RawMessage(`[]`), LastError: `"payload":0,`},
		"headers like keys":   {Seq: 5, Headers: map[string]string{"payload": "0", `"effects":0`: "x"}, Payload: json.RawMessage(`"s"`), Effects: json.RawMessage(`[1]`)},
		"replays":             {Seq: 6, Payload: json.RawMessage(`[]`), Replays: []Replay{{Job: "j", At: at, OK: true, Effects: json.RawMessage(`0`)}}},
		"replays alone":       {Seq: 7, Replays: []Replay{{Job: "j", Effects: json.RawMessage(`[0]`)}}, Comparison: "match"},
		"html":                {Seq: 8, Payload: json.RawMessage(`{"h":"<a&b>"}`), ReceivedAt: at, Backfill: true},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			// As the event enters the journal: its raw documents compacted.
			in := e
			if in.Payload, err = compactRaw(e.Payload); err != nil {
				t.Fatal(err)
			}
			if in.Effects, err = compactRaw(e.Effects); err != nil {
				t.Fatal(err)
			}
			got, err := encodeEvent(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encodeEvent:\n got %s\nwant %s", got, want)
			}
			var wantEv Event
			if err := json.Unmarshal(want, &wantEv); err != nil {
				t.Fatal(err)
			}
			gotEv, err := decodeEvent(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotEv, wantEv) {
				t.Fatalf("decodeEvent:\n got %+v\nwant %+v", gotEv, wantEv)
			}
			// With whitespace, as another encoder might have stored it.
			var indented bytes.Buffer
			json.Indent(&indented, want, "", "  ")
			gotEv, err = decodeEvent(indented.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			var wantIndented Event
			json.Unmarshal(indented.Bytes(), &wantIndented)
			if !reflect.DeepEqual(gotEv, wantIndented) {
				t.Fatalf("decodeEvent, indented:\n got %+v\nwant %+v", gotEv, wantIndented)
			}
		})
	}
}

func TestDecodeEventRefusesWhatUnmarshalRefuses(t *testing.T) {
	for _, v := range []string{``, `{`, `{"payload":{}`, `{"payload":{},"seq":"x"}`, `[]`, `{"payload":"a}`, `{"payload":1,"payload":2}`} {
		var e Event
		wantErr := json.Unmarshal([]byte(v), &e) != nil
		_, err := decodeEvent([]byte(v))
		if (err != nil) != wantErr {
			t.Errorf("decodeEvent(%q) error %v; json.Unmarshal refuses it: %v", v, err, wantErr)
		}
	}
}

func TestAppendRefusesAPayloadThatIsNotJSON(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"), Options{})
	if _, err := j.Append(t.Context(), []Event{{Partner: "p", DeliveryID: "d", Payload: json.RawMessage(`{"a":`)}}); err == nil {
		t.Fatal("Append took a payload that is not JSON")
	}
}

// compactRaw stores what json.Marshal stores for a json.RawMessage, and
// refuses what it refuses, whether or not the quick path takes it.
func FuzzCompactRaw(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `[1,2.5e-3,-0,"x",true,false,null,{},[]]`, `{"a": 1}`, " [1] ", `"<&>"`, `"\u2028"`, "\"\u2028\u2029\"",
		`"\"\\\/\b\f\n\r\t\u00e9\uD834"`, `"\x"`, `"\u12"`, `01`, `1.`, `1e`, `-`, `1.5E+10`, `tru`, `nul`, `{"a":}`, `{"a"1}`,
		`[1,]`, `{,}`, `{"a":1,}`, `"abc`, "\"a\x01\"", `[` + strings.Repeat(`[`, 1100) + strings.Repeat(`]`, 1101), `1 2`, `{}x`,
		"\"\xff\xfe\"", `{"a":[{"b":{"c":"d"}}],"e":-12.34e+5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		want, wantErr := json.Marshal(json.RawMessage(in))
		got, err := compactRaw(in)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("compactRaw(%q): error %v; json.Marshal's %v", in, err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("compactRaw(%q) = %q; json.Marshal stores %q", in, got, want)
		}
		if rawjson.Storable(in) && !bytes.Equal(in, want) {
			t.Fatalf("rawjson.Storable(%q), but json.Marshal stores %q", in, want)
		}
	})
}

// quickEvent reads every member of Event by the name its tag gives, and
// reads a record json.Marshal wrote, every member set, without help.
func TestQuickEventKnowsEveryMember(t *testing.T) {
	typ := reflect.TypeFor[Event]()
	if got, want := len(eventMembers), typ.NumField(); got != want {
		t.Errorf("quickEvent knows %d members; Event has %d fields", got, want)
	}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if _, ok := eventMembers[name]; !ok {
			t.Errorf("quickEvent does not know %s (%q)", f.Name, name)
		}
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	e := Event{Seq: 1 << 60, ID: "evt_1", Partner: "p", PSA: "generic", Type: "ticket", SourceType: "Ticket", Action: "updated",
		EntityID: "T-1", DeliveryID: "d", ReceivedAt: at, EntityUpdatedAt: at.UTC(), Headers: map[string]string{"A": "é\"<"},
		Payload: json.RawMessage(`{"a":[1,"]"]}`), State: StateApplied, Attempts: -3, Pipeline: "legacy", SnapshotVersion: 7,
		Effects: json.RawMessage(`[]`), LastError: "e\n\u2028", LastStatus: 503, DoneAt: at, Duplicates: 2, Shadow: "new",
		Comparison: "equal", Replays: []Replay{{Job: "j", At: at, OK: true, Effects: json.RawMessage(`[0]`)}}, Backfill: true}
	v, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := quickEvent(v)
	var want Event
	if err := json.Unmarshal(v, &want); err != nil {
		t.Fatal(err)
	}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("quickEvent = %v:\n got %+v\nwant %+v", ok, got, want)
	}
}

// What quickEvent reads, json.Unmarshal reads the same; what it leaves,
// decodeEvent leaves to encoding/json.
func FuzzQuickEvent(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, e := range []Event{
		{},
		{Seq: 3, ID: "evt_1", Partner: "p", ReceivedAt: at, Payload: json.RawMessage(`{"a":"\u00e9"}`), State: StateDeadLettered, Attempts: 8},
		{Seq: 4, Headers: map[string]string{"k": "v"}, Effects: json.RawMessage(`[{"k":1}]`), Replays: []Replay{{Job: "j"}}, Backfill: true},
	} {
		v, _ := json.Marshal(e)
		f.Add(v)
	}
	for _, s := range []string{
		`{"seq":1,"seq":2}`, `{"Seq":1}`, `{"seq":-1}`, `{"seq":1.0}`, `{"attempts":1e2}`, `{"attempts":99999999999999999999}`,
		`{"id":null,"headers":null,"replays":null,"backfill":null,"receivedAt":null}`, `{"id":"a\u0000b"}`, "{\"id\":\"\xff\"}",
		`{"receivedAt":"2026-13-01T00:00:00Z"}`, `{"receivedAt":1}`, `{"backfill":"true"}`, `{"state":1}`, `{"x":1}`,
		`{"payload":{"a":1}, "effects" : [ ] }`, `{"payload":"a}`, `{"headers":{"a":1}}`, ` {} `, `{}x`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		got, ok := quickEvent(v)
		if !ok {
			return
		}
		var want Event
		if err := json.Unmarshal(v, &want); err != nil {
			// The payload and effects are not checked, as decodeCut does
			// not check them: a record is never written with either not
			// JSON (compactRaw).
			if !json.Valid(got.Payload) && got.Payload != nil || !json.Valid(got.Effects) && got.Effects != nil {
				return
			}
			t.Fatalf("quickEvent(%q) took it; json.Unmarshal: %v", v, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("quickEvent(%q):\n got %+v\nwant %+v", v, got, want)
		}
	})
}

// skipString ends a string where a byte-by-byte reading of its escapes
// does.
func TestSkipString(t *testing.T) {
	byByte := func(v []byte, i int) int {
		for i++; i < len(v); i++ {
			switch v[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1
	}
	for _, v := range []string{`"abc"x`, `"a\"b"`, `"a\\"b"`, `"a\\\"b"`, `"\\\\"`, `"\\\\\""x"`, `"abc`, `"a\"`, `"\`, `""`, `"é\u0022"`} {
		if got, want := skipString([]byte(v), 0), byByte([]byte(v), 0); got != want {
			t.Errorf("skipString(%s) = %d, want %d", v, got, want)
		}
	}
}
