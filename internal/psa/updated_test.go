package psa

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// UpdatedAt reads each PSA's stamp from the fixtures as the PSA sent them:
// the entity's own last-updated field where the body has one, else the
// event's time, and nothing where there is neither.
func TestUpdatedAtFromFixtures(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		kind, file string
		want       time.Time // zero: no stamp
	}{
		{KindConnectWise, "connectwise/ticket_updated.json", at("2026-03-02T09:31:43Z")},
		{KindConnectWise, "connectwise/ticket_added.json", at("2026-03-02T09:14:05Z")},
		{KindConnectWise, "connectwise/ticket_deleted.json", time.Time{}},
		{KindAutotask, "autotask/ticket_update.json", at("2026-03-02T09:31:43.113Z")}, // LastActivityDate, not EventTime
		{KindAutotask, "autotask/ticket_delete.json", at("2026-03-02T11:02:19.004Z")},
		{KindAutotask, "autotask/contact_update.json", at("2026-03-01T08:10:00Z")},
		{KindHaloPSA, "halopsa/ticket_updated.json", at("2026-09-25T07:02:11.12Z")},
		{KindHaloPSA, "halopsa/ticket_new_logged.json", at("2026-09-25T06:41:08.7895915Z")},
		{KindHaloPSA, "halopsa/batch.json", time.Time{}},                         // a whole batch is no one event
		{KindGeneric, "generic/ticket_updated.json", at("2026-03-02T09:31:43Z")}, // data.updated_at, not timestamp
		{KindGeneric, "generic/ticket_created.json", at("2026-03-02T09:14:07.512Z")},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := UpdatedAt(tc.kind, body)
			if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
				t.Errorf("UpdatedAt = %v, %v; want %v, %v", got, ok, tc.want, !tc.want.IsZero())
			}
		})
	}
}

func TestUpdatedAtFields(t *testing.T) {
	want := time.Date(2026, 3, 2, 9, 0, 0, 500_000_000, time.UTC)
	for _, tc := range []struct {
		name, kind, body string
		ok               bool
	}{
		{"connectwise entity as an object", KindConnectWise, `{"Entity":{"_info":{"lastUpdated":"2026-03-02T09:00:00.5Z"}}}`, true},
		{"connectwise entity as a string", KindConnectWise, `{"Entity":"{\"_info\":{\"lastUpdated\":\"2026-03-02T10:00:00.5+01:00\"}}"}`, true},
		{"connectwise entity null", KindConnectWise, `{"Entity":null}`, false},
		{"connectwise entity not JSON", KindConnectWise, `{"Entity":"not json"}`, false},
		{"autotask modified date", KindAutotask, `{"Fields":{"LastModifiedDate":"2026-03-02T09:00:00.500Z"},"EventTime":"2026-03-02T09:00:01Z"}`, true},
		{"autotask without a zone", KindAutotask, `{"EventTime":"2026-03-02T09:00:00.5"}`, true},
		{"autotask nothing", KindAutotask, `{"Fields":{}}`, false},
		{"halo ticket last_update", KindHaloPSA, `{"ticket":{"last_update":"2026-03-02T09:00:00.5"},"timestamp":"2026-03-02T09:00:02Z"}`, true},
		{"halo client lastactiondate", KindHaloPSA, `{"client":{"lastactiondate":"2026-03-02T09:00:00.5Z"}}`, true},
		{"halo timestamp", KindHaloPSA, `{"ticket":{"id":1},"timestamp":"2026-03-02T09:00:00.5Z"}`, true},
		{"generic updatedAt", KindGeneric, `{"timestamp":"2026-03-02T09:00:09Z","data":{"updatedAt":"2026-03-02T09:00:00.5Z"}}`, true},
		{"generic timestamp a number", KindGeneric, `{"timestamp":1772442000}`, false},
		{"generic unreadable time", KindGeneric, `{"timestamp":"yesterday"}`, false},
		{"not JSON", KindGeneric, `{`, false},
		{"unknown kind", "zendesk", `{"timestamp":"2026-03-02T09:00:00.5Z"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := UpdatedAt(tc.kind, []byte(tc.body))
			if ok != tc.ok || (ok && !got.Equal(want)) {
				t.Errorf("UpdatedAt = %v, %v; want %v, %v", got, ok, want, tc.ok)
			}
			if ok && got.Location() != time.UTC {
				t.Errorf("UpdatedAt's location = %v, want UTC", got.Location())
			}
		})
	}
}

// FuzzUpdatedAt: whatever the payload, UpdatedAt never panics, answers the
// same twice, and a stamp it gives is in UTC. Seeds: the fixtures, plus
// testdata/fuzz/FuzzUpdatedAt/.
func FuzzUpdatedAt(f *testing.F) {
	for _, kind := range []string{KindConnectWise, KindAutotask, KindHaloPSA, KindGeneric} {
		paths, _ := filepath.Glob(filepath.Join("testdata", kind, "*.json"))
		for _, p := range paths {
			body, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(kind, body)
		}
	}
	f.Fuzz(func(t *testing.T, kind string, payload []byte) {
		got, ok := UpdatedAt(kind, payload)
		again, ok2 := UpdatedAt(kind, payload)
		if ok != ok2 || !got.Equal(again) {
			t.Fatalf("UpdatedAt answered %v, %v then %v, %v", got, ok, again, ok2)
		}
		if !ok && !got.IsZero() {
			t.Fatalf("UpdatedAt = %v without a stamp", got)
		}
		if ok && got.Location() != time.UTC {
			t.Fatalf("UpdatedAt's location = %v, want UTC", got.Location())
		}
	})
}
