package flags

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testSnapshot() *Snapshot {
	return &Snapshot{
		Version: 17,
		Migrations: map[string]*Migration{
			"psa-webhooks-v2": {Stages: map[string]string{
				"shadowed": StageShadow,
				"moved":    StageNew,
				"finished": StageDone,
				"pinned":   StageLegacy, // an explicit legacy record
				"broken":   "canary",
			}},
			"reverted": {Reverted: true, Stages: map[string]string{
				"shadowed": StageShadow,
				"moved":    StageNew,
				"finished": StageDone,
				"broken":   "canary",
			}},
			"nil-migration": nil,
		},
		Partners: map[string]Partner{
			"shadowed": {Name: "Shadowed", PSA: "connectwise"},
			"moved":    {Name: "Moved", PSA: "autotask"},
			"finished": {Name: "Finished", PSA: "halopsa"},
			"pinned":   {Name: "Pinned", PSA: "generic"},
			"broken":   {Name: "Broken", PSA: "generic"},
			"idle":     {Name: "Idle", PSA: "generic"}, // known, absent from every migration's stages
		},
	}
}

func TestEvaluate(t *testing.T) {
	s := testSnapshot()
	const v = 17
	tests := []struct {
		name    string
		snap    *Snapshot
		flag    string
		partner string
		want    Resolution
	}{
		{"nil snapshot", nil, "psa-webhooks-v2", "moved",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrProviderNotReady}},
		{"unknown flag", s, "nope", "moved",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrFlagNotFound, Version: v}},
		{"nil migration is unknown", s, "nil-migration", "moved",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrFlagNotFound, Version: v}},
		{"empty targeting key", s, "psa-webhooks-v2", "",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrTargetingKeyMissing, Version: v}},
		{"unknown partner", s, "psa-webhooks-v2", "stranger",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDefault, Version: v}},
		{"known partner absent from stages", s, "psa-webhooks-v2", "idle",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonTargetingMatch, Stage: StageLegacy, Version: v}},
		{"legacy", s, "psa-webhooks-v2", "pinned",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonTargetingMatch, Stage: StageLegacy, Version: v}},
		{"shadow", s, "psa-webhooks-v2", "shadowed",
			Resolution{Value: Legacy, Variant: StageShadow, Reason: ReasonTargetingMatch, Stage: StageShadow, Shadow: New, Version: v}},
		{"new", s, "psa-webhooks-v2", "moved",
			Resolution{Value: New, Variant: StageNew, Reason: ReasonTargetingMatch, Stage: StageNew, Shadow: Legacy, Version: v}},
		{"done", s, "psa-webhooks-v2", "finished",
			Resolution{Value: New, Variant: StageDone, Reason: ReasonTargetingMatch, Stage: StageDone, Version: v}},
		{"unknown stage string", s, "psa-webhooks-v2", "broken",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrParse, Stage: "canary", Version: v}},
		{"reverted shadow", s, "reverted", "shadowed",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDisabled, Stage: StageShadow, Version: v}},
		{"reverted new", s, "reverted", "moved",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDisabled, Stage: StageNew, Version: v}},
		{"reverted done", s, "reverted", "finished",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDisabled, Stage: StageDone, Version: v}},
		{"reverted, known partner at legacy", s, "reverted", "idle",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDisabled, Stage: StageLegacy, Version: v}},
		{"reverted, unknown partner", s, "reverted", "stranger",
			Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDefault, Version: v}},
		{"reverted, unknown stage string", s, "reverted", "broken",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrParse, Stage: "canary", Version: v}},
		{"reverted, empty targeting key", s, "reverted", "",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrTargetingKeyMissing, Version: v}},
		{"empty snapshot", &Snapshot{}, "psa-webhooks-v2", "moved",
			Resolution{Value: Legacy, Reason: ReasonError, ErrorCode: ErrFlagNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.snap.Evaluate(tt.flag, tt.partner)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate(%q, %q) (-want +got):\n%s", tt.flag, tt.partner, diff)
			}
			// Whatever happens, the value is a pipeline, and an error code
			// comes only with reason ERROR.
			if got.Value != Legacy && got.Value != New {
				t.Errorf("Value = %q, want legacy or new", got.Value)
			}
			if (got.ErrorCode != "") != (got.Reason == ReasonError) {
				t.Errorf("ErrorCode %q with Reason %q", got.ErrorCode, got.Reason)
			}
		})
	}
}

func TestEvaluateDecodedSnapshot(t *testing.T) {
	// A snapshot decoded from a newer control service's JSON, with fields
	// this package does not know, evaluates the same.
	raw := `{"version": 3, "builtAt": "2026-03-01T12:00:00Z",
		"migrations": {"m": {"seq": 1, "reverted": false, "stages": {"acme": "new"}, "pipelines": {}}},
		"partners": {"acme": {"name": "Acme", "psa": "connectwise", "secret": "x"}, "idle": {"name": "Idle", "psa": "generic"}}}`
	var s Snapshot
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		partner string
		want    Resolution
	}{
		{"acme", Resolution{Value: New, Variant: StageNew, Reason: ReasonTargetingMatch, Stage: StageNew, Shadow: Legacy, Version: 3}},
		{"idle", Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonTargetingMatch, Stage: StageLegacy, Version: 3}},
		{"nobody", Resolution{Value: Legacy, Variant: StageLegacy, Reason: ReasonDefault, Version: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.partner, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, s.Evaluate("m", tt.partner)); diff != "" {
				t.Errorf("Evaluate(m, %q) (-want +got):\n%s", tt.partner, diff)
			}
		})
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	s := benchSnapshot(1000)
	keys := []string{"p-0", "p-1", "p-2", "p-3", "p-999", "stranger", ""}
	flags := []string{"m", "nope"}
	var sink Resolution
	allocs := testing.AllocsPerRun(1000, func() {
		for _, f := range flags {
			for _, k := range keys {
				sink = s.Evaluate(f, k)
			}
		}
		sink = (*Snapshot)(nil).Evaluate("m", "p-1")
	})
	_ = sink
	if allocs != 0 {
		t.Errorf("Evaluate allocates %v times per run, want 0", allocs)
	}
	reverted := benchSnapshot(10)
	reverted.Migrations["m"].Reverted = true
	if allocs := testing.AllocsPerRun(1000, func() { sink = reverted.Evaluate("m", "p-2") }); allocs != 0 {
		t.Errorf("Evaluate while reverted allocates %v times per run, want 0", allocs)
	}
}
