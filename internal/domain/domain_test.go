package domain

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"single letter", "a", true},
		{"single digit", "7", true},
		{"slug", "acme-corp", true},
		{"dots and underscores", "psa-webhooks.v2_beta", true},
		{"digits first", "0acme", true},
		{"63 characters", "a" + strings.Repeat("b", 62), true},
		{"63 characters ending in punctuation", "a" + strings.Repeat("-", 62), true},
		{"empty", "", false},
		{"64 characters", "a" + strings.Repeat("b", 63), false},
		{"uppercase", "Acme", false},
		{"uppercase inside", "acMe", false},
		{"leading dash", "-acme", false},
		{"leading dot", ".acme", false},
		{"leading underscore", "_acme", false},
		{"space", "ac me", false},
		{"slash", "acme/x", false},
		{"non-ascii", "acmé", false},
		{"colon", "acme:1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
			err := CheckID("partner", tt.id)
			if got := err == nil; got != tt.want {
				t.Errorf("CheckID(%q) = %v, want ok=%v", tt.id, err, tt.want)
			}
			if err != nil && ErrorCode(err) != CodeInvalid {
				t.Errorf("CheckID(%q) code = %q, want %q", tt.id, ErrorCode(err), CodeInvalid)
			}
		})
	}
}

func TestCheckTransition(t *testing.T) {
	all := []Stage{StageLegacy, StageShadow, StageNew, StageDone}
	for _, from := range all {
		for _, to := range all {
			name := string(from) + "→" + string(to)
			t.Run(name, func(t *testing.T) {
				err := CheckTransition(from, to)
				switch d := to.Index() - from.Index(); {
				case d <= 1: // same, one step forward, or any step back
					if err != nil {
						t.Errorf("CheckTransition(%s, %s) = %v, want nil", from, to, err)
					}
				default:
					if got, want := ErrorCode(err), CodeInvalidTransition; got != want {
						t.Errorf("CheckTransition(%s, %s) code = %q, want %q (err %v)", from, to, got, want, err)
					}
				}
			})
		}
	}
	t.Run("unknown target", func(t *testing.T) {
		err := CheckTransition(StageLegacy, Stage("canary"))
		if got, want := ErrorCode(err), CodeInvalid; got != want {
			t.Errorf("CheckTransition(legacy, canary) code = %q, want %q", got, want)
		}
	})
	t.Run("empty target", func(t *testing.T) {
		err := CheckTransition(StageShadow, Stage(""))
		if got, want := ErrorCode(err), CodeInvalid; got != want {
			t.Errorf("CheckTransition(shadow, \"\") code = %q, want %q", got, want)
		}
	})
}

func TestStageNextAndGated(t *testing.T) {
	tests := []struct {
		stage    Stage
		next     Stage
		hasNext  bool
		gated    bool
		index    int
		parseErr bool
	}{
		{StageLegacy, StageShadow, true, false, 0, false},
		{StageShadow, StageNew, true, true, 1, false},
		{StageNew, StageDone, true, true, 2, false},
		{StageDone, "", false, false, 3, false},
		{Stage("bogus"), "", false, false, -1, true},
		{Stage(""), "", false, false, -1, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.stage), func(t *testing.T) {
			next, ok := tt.stage.Next()
			if next != tt.next || ok != tt.hasNext {
				t.Errorf("%q.Next() = %q, %v; want %q, %v", tt.stage, next, ok, tt.next, tt.hasNext)
			}
			if got := tt.stage.Gated(); got != tt.gated {
				t.Errorf("%q.Gated() = %v, want %v", tt.stage, got, tt.gated)
			}
			if got := tt.stage.Index(); got != tt.index {
				t.Errorf("%q.Index() = %d, want %d", tt.stage, got, tt.index)
			}
			if got := tt.stage.Valid(); got != !tt.parseErr {
				t.Errorf("%q.Valid() = %v, want %v", tt.stage, got, !tt.parseErr)
			}
			st, err := ParseStage(string(tt.stage))
			if tt.parseErr {
				if got, want := ErrorCode(err), CodeInvalid; got != want {
					t.Errorf("ParseStage(%q) code = %q, want %q", tt.stage, got, want)
				}
			} else if err != nil || st != tt.stage {
				t.Errorf("ParseStage(%q) = %q, %v; want %q, nil", tt.stage, st, err, tt.stage)
			}
		})
	}
}

func TestRoleAllows(t *testing.T) {
	roles := []Role{RoleViewer, RoleOperator, RoleAdmin, RoleRouter}
	want := map[Role]map[Role]bool{
		RoleViewer:   {RoleViewer: true, RoleOperator: false, RoleAdmin: false, RoleRouter: false},
		RoleOperator: {RoleViewer: true, RoleOperator: true, RoleAdmin: false, RoleRouter: false},
		RoleAdmin:    {RoleViewer: true, RoleOperator: true, RoleAdmin: true, RoleRouter: false},
		RoleRouter:   {RoleViewer: true, RoleOperator: false, RoleAdmin: false, RoleRouter: true},
	}
	for _, r := range roles {
		for _, need := range roles {
			t.Run(string(r)+" needs "+string(need), func(t *testing.T) {
				if got, want := r.Allows(need), want[r][need]; got != want {
					t.Errorf("%s.Allows(%s) = %v, want %v", r, need, got, want)
				}
			})
		}
	}
	t.Run("unknown roles", func(t *testing.T) {
		for _, r := range append(roles, Role(""), Role("root")) {
			for _, need := range []Role{"", "root"} {
				if r.Allows(need) {
					t.Errorf("%q.Allows(%q) = true, want false", r, need)
				}
			}
		}
		for _, need := range roles {
			for _, r := range []Role{"", "root", "Admin"} {
				if r.Allows(need) {
					t.Errorf("%q.Allows(%q) = true, want false", r, need)
				}
			}
		}
	})
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"viewer", "operator", "admin", "router"} {
		if r, err := ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v; want %q, nil", s, r, err, s)
		}
	}
	for _, s := range []string{"", "Admin", "root", "guard"} {
		if _, err := ParseRole(s); ErrorCode(err) != CodeInvalid {
			t.Errorf("ParseRole(%q) err = %v, want code %q", s, err, CodeInvalid)
		}
	}
}

func validMigration() Migration {
	return Migration{
		Key:       "psa-webhooks-v2",
		Pipelines: Pipelines{Legacy: Pipeline{URL: "http://legacy.internal/apply"}, New: Pipeline{URL: "https://new.internal/apply"}},
		Compare:   CompareRules{Ignore: []string{"fields.updatedAt"}, Sets: []string{"fields.tags"}},
		Gates:     DefaultGates(),
		Guard:     DefaultGuard(),
	}
}

// kindList returns n distinct effect kinds.
func kindList(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = "kind" + strconv.Itoa(i)
	}
	return ks
}

func TestMigrationValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Migration)
		wantErr string // substring of the message; "" for no error
	}{
		{"valid", func(*Migration) {}, ""},
		{"bad key", func(m *Migration) { m.Key = "PSA" }, "migration id"},
		{"empty key", func(m *Migration) { m.Key = "" }, "migration id"},
		{"long description", func(m *Migration) { m.Description = strings.Repeat("x", 2001) }, "description"},
		{"description of 2000", func(m *Migration) { m.Description = strings.Repeat("x", 2000) }, ""},
		{"missing legacy url", func(m *Migration) { m.Pipelines.Legacy.URL = "" }, "pipelines.legacy.url"},
		{"ftp new url", func(m *Migration) { m.Pipelines.New.URL = "ftp://x/y" }, "pipelines.new.url"},
		{"new url without host", func(m *Migration) { m.Pipelines.New.URL = "http:///x" }, "pipelines.new.url"},
		{"relative url", func(m *Migration) { m.Pipelines.Legacy.URL = "/apply" }, "pipelines.legacy.url"},
		{"empty ignore path", func(m *Migration) { m.Compare.Ignore = []string{""} }, "compare"},
		{"ignore path with empty part", func(m *Migration) { m.Compare.Ignore = []string{"fields..x"} }, "compare"},
		{"set path trailing dot", func(m *Migration) { m.Compare.Sets = []string{"fields."} }, "compare"},
		{"allowed extra kinds", func(m *Migration) { m.Compare.AllowExtraKinds = []string{"contact", "company"} }, ""},
		{"allowed extra kind empty", func(m *Migration) { m.Compare.AllowExtraKinds = []string{"contact", ""} }, "allowExtraKinds"},
		{"allowed extra kind too long", func(m *Migration) { m.Compare.AllowExtraKinds = []string{strings.Repeat("k", 201)} }, "allowExtraKinds"},
		{"allowed extra kind twice", func(m *Migration) { m.Compare.AllowExtraKinds = []string{"contact", "company", "contact"} }, "twice"},
		{"allowed extra kinds at the bound", func(m *Migration) { m.Compare.AllowExtraKinds = kindList(MaxAllowExtraKinds) }, ""},
		{"allowed extra kinds past the bound", func(m *Migration) { m.Compare.AllowExtraKinds = kindList(MaxAllowExtraKinds + 1) }, "at most"},
		{"negative minComparisons", func(m *Migration) { m.Gates.MinComparisons = -1 }, "gates"},
		{"negative minBakeSeconds", func(m *Migration) { m.Gates.MinBakeSeconds = -1 }, "gates"},
		{"negative minPerEventType", func(m *Migration) { m.Gates.MinPerEventType = -1 }, "gates"},
		{"mismatch rate above 1", func(m *Migration) { m.Gates.MaxMismatchRate = 1.5 }, "gates"},
		{"negative error rate", func(m *Migration) { m.Gates.MaxErrorRate = -0.1 }, "gates"},
		{"coverage above 1", func(m *Migration) { m.Gates.MinCoverage = 1.01 }, "gates"},
		{"zero tolerance equal", func(m *Migration) { m.Gates.ZeroTolerance = []Class{ClassEqual} }, "zeroTolerance"},
		{"zero tolerance skipped", func(m *Migration) { m.Gates.ZeroTolerance = []Class{ClassSkipped} }, "zeroTolerance"},
		{"zero tolerance shadow_error", func(m *Migration) { m.Gates.ZeroTolerance = []Class{ClassShadowError} }, "zeroTolerance"},
		{"zero tolerance primary_error", func(m *Migration) { m.Gates.ZeroTolerance = []Class{ClassPrimaryError} }, "zeroTolerance"},
		{"zero tolerance unknown", func(m *Migration) { m.Gates.ZeroTolerance = []Class{"weird"} }, "zeroTolerance"},
		{"zero tolerance value_diff", func(m *Migration) { m.Gates.ZeroTolerance = []Class{ClassValueDiff} }, ""},
		{"zero tolerance class twice", func(m *Migration) {
			m.Gates.ZeroTolerance = []Class{ClassMissing, ClassTypeMismatch, ClassMissing}
		}, "twice"},
		{"description with an escape sequence", func(m *Migration) { m.Description = "v2\x1b[2J" }, "description"},
		{"description with a newline", func(m *Migration) { m.Description = "two\nlines" }, "description"},
		{"description not UTF-8", func(m *Migration) { m.Description = "caf\xe9" }, "description"},
		{"description of 2000 accented characters", func(m *Migration) { m.Description = strings.Repeat("é", 2000) }, ""},
		{"unknown guard scope", func(m *Migration) { m.Guard.Scope = "global" }, "guard"},
		{"empty guard scope", func(m *Migration) { m.Guard.Scope = "" }, "guard"},
		{"guard window 0", func(m *Migration) { m.Guard.Window = 0 }, "guard"},
		{"guard window too large", func(m *Migration) { m.Guard.Window = 100001 }, "guard"},
		{"guard mismatch rate above 1", func(m *Migration) { m.Guard.MaxMismatchRate = 2 }, "guard"},
		{"guard negative error rate", func(m *Migration) { m.Guard.MaxErrorRate = -1 }, "guard"},
		{"guard scope migration", func(m *Migration) { m.Guard.Scope = ScopeMigration }, ""},
		{"reconcile after revert only", func(m *Migration) { m.Reconcile = &ReconcilePolicy{AfterRevert: true} }, ""},
		{"reconcile all off", func(m *Migration) { m.Reconcile = &ReconcilePolicy{} }, ""},
		{"reconcile every 5m, the least", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: 5 * time.Minute} }, ""},
		{"reconcile every under 5m", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: 5*time.Minute - time.Second} }, "reconcile: every"},
		{"reconcile every 31 days, the most", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: 31 * 24 * time.Hour} }, ""},
		{"reconcile every over 31 days", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: 31*24*time.Hour + time.Second} }, "reconcile: every"},
		{"reconcile every negative", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: -time.Hour} }, "reconcile: every"},
		{"reconcile window 31 days", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: time.Hour, Window: 31 * 24 * time.Hour} }, ""},
		{"reconcile window over 31 days", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: time.Hour, Window: 31*24*time.Hour + 1} }, "reconcile: window"},
		{"reconcile window negative", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: time.Hour, Window: -time.Minute} }, "reconcile: window"},
		{"reconcile window shorter than every", func(m *Migration) { m.Reconcile = &ReconcilePolicy{Every: time.Hour, Window: time.Minute} }, ""},
		{"approvals of 1 into new and done", func(m *Migration) {
			m.Approvals = &ApprovalPolicy{Required: 1, Stages: []Stage{StageNew, StageDone}, TTL: time.Hour}
		}, ""},
		{"approvals without a ttl", func(m *Migration) { m.Approvals = &ApprovalPolicy{Required: 10, Stages: []Stage{StageShadow}} }, ""},
		{"approvals ttl 720h, the most", func(m *Migration) {
			m.Approvals = &ApprovalPolicy{Required: 2, Stages: []Stage{StageNew}, TTL: 720 * time.Hour}
		}, ""},
		{"approvals ttl over 720h", func(m *Migration) {
			m.Approvals = &ApprovalPolicy{Required: 2, Stages: []Stage{StageNew}, TTL: 720*time.Hour + time.Second}
		}, "approvals: ttl"},
		{"approvals ttl negative", func(m *Migration) {
			m.Approvals = &ApprovalPolicy{Required: 2, Stages: []Stage{StageNew}, TTL: -time.Second}
		}, "approvals: ttl"},
		{"approvals required 0", func(m *Migration) { m.Approvals = &ApprovalPolicy{Stages: []Stage{StageNew}} }, "approvals: required"},
		{"approvals required 11", func(m *Migration) { m.Approvals = &ApprovalPolicy{Required: 11, Stages: []Stage{StageNew}} }, "approvals: required"},
		{"approvals of no stage", func(m *Migration) { m.Approvals = &ApprovalPolicy{Required: 1, Stages: []Stage{}} }, "approvals: stages"},
		{"approvals into legacy", func(m *Migration) { m.Approvals = &ApprovalPolicy{Required: 1, Stages: []Stage{StageLegacy}} }, "approvals: stage"},
		{"approvals into an unknown stage", func(m *Migration) { m.Approvals = &ApprovalPolicy{Required: 1, Stages: []Stage{"canary"}} }, "approvals: stage"},
		{"approvals stage twice", func(m *Migration) {
			m.Approvals = &ApprovalPolicy{Required: 1, Stages: []Stage{StageNew, StageDone, StageNew}}
		}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMigration()
			tt.edit(&m)
			err := m.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tt.wantErr)
			}
			if got, want := ErrorCode(err), CodeInvalid; got != want {
				t.Errorf("Validate() code = %q, want %q", got, want)
			}
			if got := err.Error(); !strings.Contains(got, tt.wantErr) {
				t.Errorf("Validate() = %q, want it to mention %q", got, tt.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	if err := DefaultGates().Validate(); err != nil {
		t.Errorf("DefaultGates().Validate() = %v, want nil", err)
	}
	if err := DefaultGuard().Validate(); err != nil {
		t.Errorf("DefaultGuard().Validate() = %v, want nil", err)
	}
	want := Gates{
		MinComparisons:  200,
		MaxMismatchRate: 0.001,
		ZeroTolerance:   []Class{ClassTypeMismatch, ClassMissing, ClassEmpty, ClassErrorAsymmetry},
		MinBakeSeconds:  3600,
		MaxErrorRate:    0.01,
		MinCoverage:     0.99,
		MinPerEventType: 50,
	}
	if diff := cmp.Diff(want, DefaultGates()); diff != "" {
		t.Errorf("DefaultGates() differs from API.md's defaults (-want +got):\n%s", diff)
	}
	wantGuard := Guard{Scope: ScopePartner, Window: 200, MaxMismatchRate: 0.01, MaxErrorRate: 0.05}
	if diff := cmp.Diff(wantGuard, DefaultGuard()); diff != "" {
		t.Errorf("DefaultGuard() (-want +got):\n%s", diff)
	}
}

func TestGuardAndGatesValidate(t *testing.T) {
	gates := []struct {
		name string
		g    Gates
		ok   bool
	}{
		{"zero gates", Gates{}, true},
		{"rates at the bounds", Gates{MaxMismatchRate: 1, MaxErrorRate: 0, MinCoverage: 1}, true},
		{"negative coverage", Gates{MinCoverage: -0.5}, false},
	}
	for _, tt := range gates {
		t.Run("gates "+tt.name, func(t *testing.T) {
			if got := tt.g.Validate() == nil; got != tt.ok {
				t.Errorf("Gates.Validate() ok = %v, want %v", got, tt.ok)
			}
		})
	}
	guards := []struct {
		name string
		g    Guard
		ok   bool
	}{
		{"window 1", Guard{Scope: ScopeCohort, Window: 1}, true},
		{"window 100000", Guard{Scope: ScopePartner, Window: 100000}, true},
		{"zero guard", Guard{}, false},
	}
	for _, tt := range guards {
		t.Run("guard "+tt.name, func(t *testing.T) {
			if got := tt.g.Validate() == nil; got != tt.ok {
				t.Errorf("Guard.Validate() ok = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestPartnerValidate(t *testing.T) {
	ok := Partner{ID: "acme", Name: "Acme", PSA: PSAConnectWise}
	tests := []struct {
		name string
		edit func(*Partner)
		ok   bool
	}{
		{"valid", func(*Partner) {}, true},
		{"each psa", func(p *Partner) { p.PSA = PSAHaloPSA }, true},
		{"bad id", func(p *Partner) { p.ID = "-acme" }, false},
		{"no name", func(p *Partner) { p.Name = "" }, false},
		{"long name", func(p *Partner) { p.Name = strings.Repeat("n", 201) }, false},
		{"name of 200 accented characters", func(p *Partner) { p.Name = strings.Repeat("é", 200) }, true},
		{"name with an escape sequence", func(p *Partner) { p.Name = "Acme\x1b]0;pwned\x07" }, false},
		{"name with a C1 control", func(p *Partner) { p.Name = "Acme\u009b2J" }, false},
		{"name with a NUL", func(p *Partner) { p.Name = "Acme\x00" }, false},
		{"name not UTF-8", func(p *Partner) { p.Name = "Acme \xff" }, false},
		{"name in another script", func(p *Partner) { p.Name = "株式会社アクメ" }, true},
		{"unknown psa", func(p *Partner) { p.PSA = "servicenow" }, false},
		{"long secret", func(p *Partner) { p.Secret = strings.Repeat("s", 4097) }, false},
		{"secret of 4096", func(p *Partner) { p.Secret = strings.Repeat("s", 4096) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			err := p.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && ErrorCode(err) != CodeInvalid {
				t.Errorf("Validate() code = %q, want %q", ErrorCode(err), CodeInvalid)
			}
		})
	}
}

func TestCohortValidate(t *testing.T) {
	bad := Gates{MinCoverage: 2}
	tests := []struct {
		name string
		c    Cohort
		ok   bool
	}{
		{"valid", Cohort{Name: "wave-1", Partners: []string{"a", "b"}}, true},
		{"empty", Cohort{Name: "wave-1"}, true},
		{"bad name", Cohort{Name: "Wave 1"}, false},
		{"bad partner id", Cohort{Name: "w", Partners: []string{"A"}}, false},
		{"duplicate partner", Cohort{Name: "w", Partners: []string{"a", "a"}}, false},
		{"bad gates", Cohort{Name: "w", Gates: &bad}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestClass(t *testing.T) {
	tests := []struct {
		class                Class
		compared, mismatched bool
	}{
		{ClassEqual, true, false},
		{ClassValueDiff, true, true},
		{ClassTypeMismatch, true, true},
		{ClassMissing, true, true},
		{ClassExtra, true, true},
		{ClassEmpty, true, true},
		{ClassErrorAsymmetry, true, true},
		{ClassPrimaryError, false, false},
		{ClassShadowError, false, false},
		{ClassSkipped, false, false},
		{ClassNoise, true, false},
	}
	if len(tests) != len(Classes) {
		t.Fatalf("the test covers %d classes, the package lists %d", len(tests), len(Classes))
	}
	for _, tt := range tests {
		t.Run(string(tt.class), func(t *testing.T) {
			if !tt.class.Valid() {
				t.Errorf("%s.Valid() = false, want true", tt.class)
			}
			if got := tt.class.Compared(); got != tt.compared {
				t.Errorf("%s.Compared() = %v, want %v", tt.class, got, tt.compared)
			}
			if got := tt.class.Mismatched(); got != tt.mismatched {
				t.Errorf("%s.Mismatched() = %v, want %v", tt.class, got, tt.mismatched)
			}
		})
	}
	if Class("nope").Valid() {
		t.Errorf(`Class("nope").Valid() = true, want false`)
	}
}

func TestErrors(t *testing.T) {
	cause := errors.New("disk on fire")
	tests := []struct {
		name        string
		err         error
		code, msg   string
		wantUnwraps bool
	}{
		{"domain error", Errorf(CodeNotFound, "partner %q does not exist", "x"), CodeNotFound, `partner "x" does not exist`, false},
		{"internal hides its cause", Internal("write", cause), CodeInternal, "internal error", true},
		{"plain error", cause, CodeInternal, "internal error", false},
		{"nil", nil, CodeInternal, "internal error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode() = %q, want %q", got, tt.code)
			}
			if got := ErrorMessage(tt.err); got != tt.msg {
				t.Errorf("ErrorMessage() = %q, want %q", got, tt.msg)
			}
			if got := errors.Is(tt.err, cause); got != tt.wantUnwraps && tt.err != cause {
				t.Errorf("errors.Is(err, cause) = %v, want %v", got, tt.wantUnwraps)
			}
		})
	}
	if got := Internal("write", cause).Error(); strings.Contains(got, "disk") {
		t.Errorf("Internal(...).Error() = %q leaks its cause", got)
	}
}
