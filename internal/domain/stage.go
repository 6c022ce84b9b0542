package domain

import "time"

// Stage is where a partner stands in a migration.
type Stage string

const (
	StageLegacy Stage = "legacy" // legacy applies, nothing shadows
	StageShadow Stage = "shadow" // legacy applies, new runs in dry-run
	StageNew    Stage = "new"    // new applies, legacy runs in dry-run
	StageDone   Stage = "done"   // new applies, nothing shadows
)

// Stages lists the stages in their forward order.
var stages = [...]Stage{StageLegacy, StageShadow, StageNew, StageDone}

// Index is the stage's position in the forward order, or -1 if unknown.
func (s Stage) Index() int {
	for i, x := range stages {
		if x == s {
			return i
		}
	}
	return -1
}

// Valid reports whether s is a known stage.
func (s Stage) Valid() bool { return s.Index() >= 0 }

// Next returns the stage one step forward, and false at done.
func (s Stage) Next() (Stage, bool) {
	i := s.Index()
	if i < 0 || i+1 >= len(stages) {
		return "", false
	}
	return stages[i+1], true
}

// ParseStage returns the stage named s or an invalid_argument error.
func ParseStage(s string) (Stage, error) {
	st := Stage(s)
	if !st.Valid() {
		return "", Errorf(CodeInvalid, "stage %q is unknown: use legacy, shadow, new or done", s)
	}
	return st, nil
}

// Gated reports whether moving forward from s to the next stage needs the
// gates to pass. The gates judge comparisons made in the current stage, so
// only shadow → new and new → done have any to judge; legacy → shadow changes
// nothing a partner sees.
func (s Stage) Gated() bool { return s == StageShadow || s == StageNew }

// CheckTransition returns nil when a partner may move from one stage to
// another. Forward moves go one step at a time; backward moves always pass.
// It does not judge gates: see Gated.
func CheckTransition(from, to Stage) error {
	if !to.Valid() {
		return Errorf(CodeInvalid, "stage %q is unknown: use legacy, shadow, new or done", to)
	}
	if d := to.Index() - from.Index(); d > 1 {
		next, _ := from.Next()
		return Errorf(CodeInvalidTransition, "cannot move from %s to %s: forward moves go one stage at a time (next is %s)", from, to, next)
	}
	return nil
}

// PartnerStage is one partner's stage in one migration, and since when.
// A partner without a stored record is at legacy.
type PartnerStage struct {
	Partner string    `json:"partner"`
	Stage   Stage     `json:"stage"`
	Since   time.Time `json:"since"`
}
