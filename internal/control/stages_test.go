package control_test

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

func TestSetStage(t *testing.T) {
	noReason := control.Change{Actor: "ops"}
	tests := []struct {
		name     string
		from     domain.Stage
		reverted bool
		change   control.Change
		to       domain.Stage
		force    bool
		wantCode string // "" for success
		gate     bool   // want a gate_refused error with its report
	}{
		{name: "legacy to shadow needs no gate", from: domain.StageLegacy, change: ops, to: domain.StageShadow},
		{name: "legacy to new is a jump", from: domain.StageLegacy, change: ops, to: domain.StageNew, wantCode: domain.CodeInvalidTransition},
		{name: "legacy to done is a jump", from: domain.StageLegacy, change: ops, to: domain.StageDone, wantCode: domain.CodeInvalidTransition},
		{name: "forced jump is still a jump", from: domain.StageShadow, change: ops, to: domain.StageDone, force: true, wantCode: domain.CodeInvalidTransition},
		{name: "shadow to new without data is refused by the gates", from: domain.StageShadow, change: ops, to: domain.StageNew, wantCode: domain.CodeGateRefused, gate: true},
		{name: "new to done without data is refused by the gates", from: domain.StageNew, change: ops, to: domain.StageDone, wantCode: domain.CodeGateRefused, gate: true},
		{name: "forced without a reason", from: domain.StageShadow, change: noReason, to: domain.StageNew, force: true, wantCode: domain.CodeInvalid},
		{name: "forced with a blank reason", from: domain.StageShadow, change: control.Change{Actor: "ops", Reason: "  "}, to: domain.StageNew, force: true, wantCode: domain.CodeInvalid},
		{name: "forced with a reason", from: domain.StageShadow, change: ops, to: domain.StageNew, force: true},
		{name: "done to legacy", from: domain.StageDone, change: noReason, to: domain.StageLegacy},
		{name: "new to shadow", from: domain.StageNew, change: noReason, to: domain.StageShadow},
		{name: "done to new", from: domain.StageDone, change: noReason, to: domain.StageNew},
		{name: "unknown stage", from: domain.StageLegacy, change: ops, to: "canary", wantCode: domain.CodeInvalid},
		{name: "forward while reverted", from: domain.StageLegacy, reverted: true, change: ops, to: domain.StageShadow, wantCode: domain.CodeMigrationReverted},
		{name: "forced forward while reverted", from: domain.StageShadow, reverted: true, change: ops, to: domain.StageNew, force: true, wantCode: domain.CodeMigrationReverted},
		{name: "backward while reverted", from: domain.StageNew, reverted: true, change: noReason, to: domain.StageShadow},
		{name: "done to legacy while reverted", from: domain.StageDone, reverted: true, change: noReason, to: domain.StageLegacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.migration(t, "m")
			e.partner(t, "acme")
			e.moveTo(t, "m", "acme", tt.from)
			if tt.reverted {
				if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
					t.Fatal(err)
				}
			}
			before := e.stage(t, "m", "acme")
			v, n := e.svc.State().Version, len(e.auditLog(t))
			now := e.clock.Advance(time.Minute)

			got, err := e.svc.SetStage(ctx, tt.change, "m", "acme", tt.to, tt.force)
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantCode)
				var gre *gateRefusal
				if isGate := asRefusal(err, &gre); isGate != tt.gate {
					t.Errorf("err is a gate_refused error with its report: %v, want %v", isGate, tt.gate)
				} else if isGate {
					if gre.Report.Pass || len(gre.Report.Partners) != 1 || gre.Report.Partners[0].Partner != "acme" || gre.Report.Partners[0].Stage != tt.from {
						t.Errorf("gate report = %+v, want acme at %s, refused", gre.Report, tt.from)
					}
					if len(gre.Report.Partners) == 1 && len(gre.Report.Partners[0].Checks) < 6 {
						t.Errorf("gate report has %d checks, want every criterion", len(gre.Report.Partners[0].Checks))
					}
				}
				if diff := cmp.Diff(before, e.stage(t, "m", "acme")); diff != "" {
					t.Errorf("a refused move changed the stage (-before +after):\n%s", diff)
				}
				e.unchanged(t, v, n)
				return
			}
			if err != nil {
				t.Fatalf("SetStage(%s → %s) = %v, want success", tt.from, tt.to, err)
			}
			want := domain.PartnerStage{Partner: "acme", Stage: tt.to, Since: now}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SetStage result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, e.stage(t, "m", "acme")); diff != "" {
				t.Errorf("stored stage (-want +got):\n%s", diff)
			}
			if got := e.svc.State().Version; got != v+1 {
				t.Errorf("version = %d, want %d", got, v+1)
			}
			log := e.auditLog(t)
			if len(log) != n+1 {
				t.Fatalf("audit entries = %d, want %d", len(log), n+1)
			}
			last := log[n]
			if last.Action != "stage.set" || last.Target != "migration/m/partner/acme" || last.Actor != tt.change.Actor || last.Reason != tt.change.Reason {
				t.Errorf("audit entry = %+v", last)
			}
			var after struct {
				Stage  domain.Stage `json:"stage"`
				Forced bool         `json:"forced"`
			}
			if err := json.Unmarshal(last.After, &after); err != nil {
				t.Fatal(err)
			}
			if after.Stage != tt.to || after.Forced != tt.force {
				t.Errorf("audit after = %s, want stage %s forced %v", last.After, tt.to, tt.force)
			}
			var beforeRec domain.PartnerStage
			if err := json.Unmarshal(last.Before, &beforeRec); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, beforeRec); diff != "" {
				t.Errorf("audit before (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("same stage is a no-op", func(t *testing.T) {
		e := newEnv(t, nil)
		e.migration(t, "m")
		e.partner(t, "acme")
		e.moveTo(t, "m", "acme", domain.StageShadow)
		before := e.stage(t, "m", "acme")
		v, n := e.svc.State().Version, len(e.auditLog(t))
		e.clock.Advance(time.Hour)
		got, err := e.svc.SetStage(ctx, ops, "m", "acme", domain.StageShadow, false)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, got); diff != "" {
			t.Errorf("no-op result (-want +got):\n%s", diff)
		}
		e.unchanged(t, v, n)
	})

	t.Run("unknown migration or partner", func(t *testing.T) {
		e := newEnv(t, nil)
		e.migration(t, "m")
		e.partner(t, "acme")
		_, err := e.svc.SetStage(ctx, ops, "nope", "acme", domain.StageShadow, false)
		wantCode(t, err, domain.CodeNotFound)
		_, err = e.svc.SetStage(ctx, ops, "m", "nobody", domain.StageShadow, false)
		wantCode(t, err, domain.CodeNotFound)
	})
}

func TestSetStageGateAndBakeTime(t *testing.T) {
	var mu sync.Mutex
	type call struct {
		migration, partner string
		stage              domain.Stage
		since              time.Time
	}
	var calls []call
	stats := fakeStats{counts: func(m, p string, st domain.Stage, since time.Time) (gate.Counts, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{m, p, st, since})
		if p == "bad" {
			return badCounts(), nil
		}
		return goodCounts(), nil
	}}
	e := newEnv(t, stats)
	e.migration(t, "m")
	e.partner(t, "acme")
	e.partner(t, "bad")
	e.moveTo(t, "m", "acme", domain.StageShadow)
	e.moveTo(t, "m", "bad", domain.StageShadow)
	since := e.stage(t, "m", "acme").Since

	e.clock.Advance(59*time.Minute + 59*time.Second)
	_, err := e.svc.SetStage(ctx, ops, "m", "acme", domain.StageNew, false)
	var gre *gateRefusal
	if !asRefusal(err, &gre) {
		t.Fatalf("SetStage before the bake time = %v, want a gate_refused error with its report", err)
	}
	var failed []string
	for _, c := range gre.Report.Partners[0].Checks {
		if !c.Pass {
			failed = append(failed, c.Name)
		}
	}
	if want := []string{"minBakeSeconds"}; !slices.Equal(failed, want) {
		t.Errorf("failed checks = %v, want %v", failed, want)
	}
	mu.Lock()
	if want := (call{"m", "acme", domain.StageShadow, since}); len(calls) != 1 || calls[0] != want {
		t.Errorf("stats calls = %+v, want one %+v", calls, want)
	}
	mu.Unlock()

	now := e.clock.Advance(time.Second)
	got, err := e.svc.SetStage(ctx, ops, "m", "acme", domain.StageNew, false)
	if err != nil {
		t.Fatalf("SetStage once the bake time has passed = %v", err)
	}
	if want := (domain.PartnerStage{Partner: "acme", Stage: domain.StageNew, Since: now}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// A zero-tolerance mismatch refuses whatever the bake time.
	e.clock.Advance(24 * time.Hour)
	_, err = e.svc.SetStage(ctx, ops, "m", "bad", domain.StageNew, false)
	if !asRefusal(err, &gre) {
		t.Fatalf("SetStage with a type_mismatch = %v, want a gate_refused error with its report", err)
	}
	if !strings.Contains(err.Error(), "zeroTolerance") {
		t.Errorf("message %q does not name the failed check", err.Error())
	}
	// new → done is gated on the comparisons made in new: bake time again.
	_, err = e.svc.SetStage(ctx, ops, "m", "acme", domain.StageDone, false)
	if err != nil {
		t.Errorf("new → done after a day with good counts = %v", err)
	}
}
