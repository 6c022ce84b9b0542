package domain

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A scheduled reconciliation looks back its window, or one period when
// the window is left at 0.
func TestReconcilePolicyEffectiveWindow(t *testing.T) {
	tests := []struct {
		name string
		p    ReconcilePolicy
		want time.Duration
	}{
		{"window set", ReconcilePolicy{Every: time.Hour, Window: 2 * time.Hour}, 2 * time.Hour},
		{"window 0 takes every", ReconcilePolicy{Every: time.Hour}, time.Hour},
		{"window shorter than every", ReconcilePolicy{Every: time.Hour, Window: 30 * time.Minute}, 30 * time.Minute},
		{"nothing scheduled", ReconcilePolicy{AfterRevert: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.EffectiveWindow(); got != tt.want {
				t.Errorf("EffectiveWindow() = %s, want %s", got, tt.want)
			}
		})
	}
}

// The policy reads durations as time.ParseDuration writes them and writes
// them as time.Duration.String does; a duration that is not one is an
// invalid argument naming the field.
func TestReconcilePolicyJSON(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    ReconcilePolicy
		wantErr string // substring of the message; "" for none
	}{
		{"the documented example", `{"afterRevert": true, "every": "1h", "window": "2h"}`,
			ReconcilePolicy{AfterRevert: true, Every: time.Hour, Window: 2 * time.Hour}, ""},
		{"as Go writes it", `{"afterRevert": false, "every": "1h30m0s", "window": "0s"}`, ReconcilePolicy{Every: 90 * time.Minute}, ""},
		{"minutes", `{"every": "90m"}`, ReconcilePolicy{Every: 90 * time.Minute}, ""},
		{"durations absent", `{"afterRevert": true}`, ReconcilePolicy{AfterRevert: true}, ""},
		{"durations null", `{"every": null, "window": null}`, ReconcilePolicy{}, ""},
		{"empty", `{}`, ReconcilePolicy{}, ""},
		{"negative is read, Validate refuses it", `{"every": "-1h"}`, ReconcilePolicy{Every: -time.Hour}, ""},
		{"every not a duration", `{"every": "1 hour"}`, ReconcilePolicy{}, `reconcile: every "1 hour" is not a duration`},
		{"window without a unit", `{"every": "1h", "window": "7200"}`, ReconcilePolicy{}, `reconcile: window "7200" is not a duration`},
		{"every a number", `{"every": 3600}`, ReconcilePolicy{}, "cannot unmarshal number"},
		{"afterRevert a string", `{"afterRevert": "yes"}`, ReconcilePolicy{}, "cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ReconcilePolicy
			err := json.Unmarshal([]byte(tt.json), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unmarshal(%s) = %v, want an error mentioning %q", tt.json, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s) = %v", tt.json, err)
			}
			if got != tt.want {
				t.Errorf("Unmarshal(%s) = %+v, want %+v", tt.json, got, tt.want)
			}
		})
	}
	var err error
	if err = json.Unmarshal([]byte(`{"every": "soon"}`), new(ReconcilePolicy)); ErrorCode(err) != CodeInvalid {
		t.Errorf("a duration that is not one: code %q, want %q", ErrorCode(err), CodeInvalid)
	}

	b, err := json.Marshal(ReconcilePolicy{AfterRevert: true, Every: time.Hour, Window: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"afterRevert":true,"every":"1h0m0s","window":"2h0m0s"}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
}

// A migration stored before the setting existed has none, and one with a
// policy reads back the same; an absent policy is left out of the JSON.
func TestMigrationReconcileJSON(t *testing.T) {
	var old Migration
	if err := json.Unmarshal([]byte(`{"key":"m","pipelines":{"legacy":{"url":"http://l"},"new":{"url":"http://n"}},"guard":{"scope":"partner","window":200}}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Reconcile != nil {
		t.Errorf("a migration stored without reconcile reads as %+v, want nil", *old.Reconcile)
	}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "reconcile") {
		t.Errorf("a migration without a policy writes %s: want no reconcile field", b)
	}

	m := validMigration()
	m.Reconcile = &ReconcilePolicy{AfterRevert: true, Every: 15 * time.Minute}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	var back Migration
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back); diff != "" {
		t.Errorf("round trip of %s (-want +got):\n%s", b, diff)
	}
}
