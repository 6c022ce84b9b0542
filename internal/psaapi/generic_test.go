package psaapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeGenericPage(t *testing.T) {
	cases := []struct {
		name string
		body string
		want string // error text; "" for a page
	}{
		{"page", `{"changes":[{"type":"ticket","id":"1","updatedAt":"2026-12-03T10:00:00+01:00","data":{"a":1}}],"next":"C2"}`, ""},
		{"last page", `{"changes":[],"next":null}`, ""},
		{"no next", `{"changes":[]}`, ""},
		{"integer id", `{"changes":[{"type":"ticket","id":42,"updatedAt":"2026-12-03T10:00:00Z","data":[]}],"next":null}`, ""},
		{"unknown fields", `{"changes":[{"type":"t","id":"1","updatedAt":"2026-12-03T10:00:00Z","data":0,"x":1}],"next":null,"total":3}`, ""},
		{"not json", `<html>`, "not one JSON value"},
		{"array", `[]`, "not a JSON object"},
		{"two values", `{"changes":[]} {}`, "not one JSON value"},
		{"stray brace", `{"changes":[]}}`, "not one JSON value"},
		{"changes missing", `{"next":null}`, "changes is missing"},
		{"changes null", `{"changes":null}`, "changes is missing"},
		{"empty next", `{"changes":[],"next":""}`, `next is ""`},
		{"no type", `{"changes":[{"id":"1","updatedAt":"2026-12-03T10:00:00Z","data":{}}]}`, "change 0: type"},
		{"empty id", `{"changes":[{"type":"t","id":"","updatedAt":"2026-12-03T10:00:00Z","data":{}}]}`, "change 0: id"},
		{"fraction id", `{"changes":[{"type":"t","id":1.5,"updatedAt":"2026-12-03T10:00:00Z","data":{}}]}`, "change 0: id"},
		{"long id", `{"changes":[{"type":"t","id":"` + strings.Repeat("x", 257) + `","updatedAt":"2026-12-03T10:00:00Z","data":{}}]}`, "change 0: id"},
		{"bad time", `{"changes":[{"type":"t","id":"1","updatedAt":"yesterday","data":{}}]}`, "change 0: updatedAt"},
		{"no time", `{"changes":[{"type":"t","id":"1","data":{}}]}`, "updatedAt is missing"},
		{"null data", `{"changes":[{"type":"t","id":"1","updatedAt":"2026-12-03T10:00:00Z","data":null}]}`, "data is missing"},
		{"no data", `{"changes":[{"type":"t","id":"1","updatedAt":"2026-12-03T10:00:00Z"}]}`, "data is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := decodeGenericPage([]byte(tc.body))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode: %+v, %v; want an error with %q", p, err, tc.want)
			}
		})
	}
	p, _ := decodeGenericPage([]byte(cases[0].body))
	want := Change{Type: "ticket", ID: "1", UpdatedAt: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), Data: json.RawMessage(`{"a":1}`)}
	if len(p.Changes) != 1 || !reflect.DeepEqual(p.Changes[0], want) || p.Next != "C2" {
		t.Errorf("page %+v, want [%+v] next C2", p, want)
	}
	p, _ = decodeGenericPage([]byte(`{"changes":[{"type":"ticket","id":"7","updatedAt":"2026-12-03T10:00:00Z","deleted":true,"data":{"id":7}}],"next":null}`))
	if len(p.Changes) != 1 || !p.Changes[0].Deleted {
		t.Errorf("page %+v, want ticket 7 deleted", p)
	}
}

// FuzzDecodeGenericPage: whatever a feed answers, the decoder neither
// panics nor accepts what is not JSON, and a page it accepts holds only
// changes a reconciliation can use, and reads back the same once written.
func FuzzDecodeGenericPage(f *testing.F) {
	f.Add([]byte(`{"changes":[{"type":"ticket","id":"123","updatedAt":"2026-12-03T10:00:00Z","data":{"id":123}}],"next":"C2"}`))
	f.Add([]byte(`{"changes":[],"next":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeGenericPage(body)
		if err != nil {
			if p.Changes != nil || p.Next != "" {
				t.Fatalf("error %v with a page %+v", err, p)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		for i, c := range p.Changes {
			if c.Type == "" || len(c.Type) > maxGenericField || c.ID == "" || len(c.ID) > maxGenericField {
				t.Fatalf("change %d: type %q id %q", i, c.Type, c.ID)
			}
			if c.UpdatedAt.Location() != time.UTC {
				t.Fatalf("change %d: updatedAt %v", i, c.UpdatedAt)
			}
			if !json.Valid(c.Data) || string(c.Data) == "null" {
				t.Fatalf("change %d: data %q", i, c.Data)
			}
		}
		type wire struct {
			Type      string          `json:"type"`
			ID        string          `json:"id"`
			UpdatedAt string          `json:"updatedAt"`
			Data      json.RawMessage `json:"data"`
		}
		out := struct {
			Changes []wire  `json:"changes"`
			Next    *string `json:"next"`
		}{Changes: []wire{}}
		for _, c := range p.Changes {
			out.Changes = append(out.Changes, wire{c.Type, c.ID, c.UpdatedAt.Format(time.RFC3339Nano), c.Data})
		}
		if p.Next != "" {
			out.Next = &p.Next
		}
		again, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("writing the page back: %v", err)
		}
		p2, err := decodeGenericPage(again)
		if err != nil {
			t.Fatalf("the page written back %s: %v", again, err)
		}
		if len(p2.Changes) != len(p.Changes) || p2.Next != p.Next {
			t.Fatalf("read back %+v, want %+v", p2, p)
		}
		for i := range p.Changes {
			a, b := p.Changes[i], p2.Changes[i]
			if a.Type != b.Type || a.ID != b.ID || !a.UpdatedAt.Equal(b.UpdatedAt) {
				t.Fatalf("change %d read back %+v, want %+v", i, b, a)
			}
		}
	})
}
