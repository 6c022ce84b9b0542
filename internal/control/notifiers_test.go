package control_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/wire"
)

const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_c2VjcmV0LWItc2VjcmV0LWItc2VjcmV0LWItMDA="
	// slackURL's path is a credential, as a Slack webhook's is.
	slackURL = "https://hooks.slack.com/services/T0/B0/pathcredential"
)

func ptr[T any](v T) *T { return &v }

// notices collects what a service emits.
type notices struct {
	mu  sync.Mutex
	got []domain.Notice
}

func hear(svc *control.Service) *notices {
	n := &notices{}
	svc.OnNotice(func(x domain.Notice) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.got = append(n.got, x)
	})
	return n
}

// take returns and forgets what was heard.
func (n *notices) take() []domain.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.got
	n.got = nil
	return out
}

// events are the events heard so far, in order.
func (n *notices) events() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.got {
		out = append(out, x.Event)
	}
	return out
}

// one returns the one notice heard, failing otherwise.
func (n *notices) one(t *testing.T) domain.Notice {
	t.Helper()
	got := n.take()
	if len(got) != 1 {
		t.Fatalf("heard %d notices, want 1: %+v", len(got), got)
	}
	if got[0].ID == "" || got[0].At.IsZero() || got[0].Text == "" || strings.ContainsAny(got[0].Text, "\n\r") {
		t.Errorf("notice %+v: want an id, a time and a one-line text", got[0])
	}
	return got[0]
}

// A target is created (201's true), replaced with its secret and URL kept
// when omitted, and deleted; the state holds it for the deliverer, its
// view and every audit entry hold neither the secret nor the URL's path,
// nor does the log; a restart loads it.
func TestPutNotifier(t *testing.T) {
	var logs bytes.Buffer
	e := &env{store: bolttest.Open(t), clock: newClock()}
	svc, err := control.New(ctx, e.store, control.Options{Now: e.clock.Now, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	in := control.NotifierInput{Name: "ops", URL: ptr(slackURL), Events: []string{domain.NoticeGuardRevert}, Secret: ptr(secretA)}
	n, created, err := svc.PutNotifier(ctx, admin, in)
	if err != nil || !created {
		t.Fatalf("PutNotifier(new) = %v, %v; want created", created, err)
	}
	if n.Format != domain.FormatStandard || n.Secret != secretA {
		t.Errorf("new target %+v: want the default format, standard, and its secret", n)
	}
	v := svc.State().Version

	// Replaced without url nor secret: both kept.
	e.clock.Advance(time.Minute)
	n2, created, err := svc.PutNotifier(ctx, admin, control.NotifierInput{Name: "ops", Events: []string{domain.NoticeRevert, domain.NoticeResume}})
	if err != nil || created {
		t.Fatalf("PutNotifier(replace) = %v, %v; want replaced", created, err)
	}
	if n2.URL != slackURL || n2.Secret != secretA || !n2.CreatedAt.Equal(n.CreatedAt) || !n2.UpdatedAt.After(n.UpdatedAt) {
		t.Errorf("replaced target %+v: want url, secret and createdAt kept, updatedAt moved", n2)
	}
	if got := svc.State().Version; got != v+1 {
		t.Errorf("version after a replace = %d, want %d", got, v+1)
	}
	// The same again: nothing to do, no version, no entry.
	entries := len(e.auditLog(t))
	if _, _, err := svc.PutNotifier(ctx, admin, control.NotifierInput{Name: "ops", Events: []string{domain.NoticeRevert, domain.NoticeResume}}); err != nil {
		t.Fatal(err)
	}
	e.unchanged(t, v+1, entries)
	// A new secret.
	if _, _, err := svc.PutNotifier(ctx, admin, control.NotifierInput{Name: "ops", Events: []string{domain.NoticeRevert}, Secret: ptr(secretB)}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.State().Notifier("ops")
	if err != nil || got.Secret != secretB || got.URL != slackURL {
		t.Fatalf("State().Notifier = %+v, %v; want the new secret and the kept URL", got, err)
	}
	if view := wire.TargetOf(*got); view.URL != "https://hooks.slack.com/…" || !view.HasSecret {
		t.Errorf("TargetOf = %+v: want the URL's host only and hasSecret", view)
	}

	// A restart loads it.
	again, err := control.New(ctx, e.store, control.Options{Now: e.clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(svc.State().NotifierList(), again.State().NotifierList()); diff != "" {
		t.Errorf("targets after a restart (-before +after):\n%s", diff)
	}

	if err := svc.DeleteNotifier(ctx, admin, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.State().Notifier("ops"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("Notifier after delete = %v, want not_found", err)
	}
	wantCode(t, svc.DeleteNotifier(ctx, admin, "ops"), domain.CodeNotFound)

	var actions []string
	for _, entry := range e.auditLog(t) {
		if !strings.HasPrefix(entry.Target, "notification/") {
			continue
		}
		actions = append(actions, entry.Action)
		for _, leak := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "c2VjcmV0LWIt", "pathcredential", "whsec_"} {
			if strings.Contains(string(entry.Before)+string(entry.After), leak) {
				t.Errorf("audit entry %s %s holds %q: %s → %s", entry.Action, entry.Target, leak, entry.Before, entry.After)
			}
		}
		if entry.Action == "notification.put" && entry.Before != nil && strings.Contains(string(entry.After), `"events":["revert"]`) &&
			!strings.Contains(string(entry.After), `"secretChanged":true`) {
			t.Errorf("audit entry of the new secret %s: want secretChanged", entry.After)
		}
	}
	if want := []string{"notification.put", "notification.put", "notification.put", "notification.delete"}; !cmp.Equal(actions, want) {
		t.Errorf("audit actions = %v, want %v", actions, want)
	}
	for _, leak := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "c2VjcmV0LWIt", "pathcredential"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log holds %q:\n%s", leak, logs.String())
		}
	}
}

func TestPutNotifierRefuses(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name  string
		in    control.NotifierInput
		field string
	}{
		{"no url on create", control.NotifierInput{Name: "ops", Events: []string{"revert"}, Format: "slack"}, "url"},
		{"no secret for standard", control.NotifierInput{Name: "ops", URL: ptr("https://x.example.com"), Events: []string{"revert"}}, "secret"},
		{"bad name", control.NotifierInput{Name: "Ops!", URL: ptr("https://x.example.com"), Events: []string{"revert"}, Format: "slack"}, "notification target id"},
		{"unknown event", control.NotifierInput{Name: "ops", URL: ptr("https://x.example.com"), Events: []string{"deploy"}, Format: "slack"}, "events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.svc.PutNotifier(ctx, admin, tt.in)
			wantCode(t, err, domain.CodeInvalid)
			if err != nil && !strings.Contains(err.Error(), tt.field) {
				t.Errorf("err = %q, want it to name %s", err, tt.field)
			}
		})
	}
	if got := len(e.svc.State().Notifiers); got != 0 {
		t.Errorf("%d targets after refusals, want none", got)
	}
}

// A person's revert, revert-all and resume are noticed once each, after
// the change, with who, why and which migrations; a call that changes
// nothing is not.
func TestNoticeKillSwitch(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m")
	e.migration(t, "n")
	heard := hear(e.svc)
	v, err := e.svc.Revert(ctx, ops, "m")
	if err != nil {
		t.Fatal(err)
	}
	n := heard.one(t)
	if n.Event != domain.NoticeRevert || n.Actor != "ops" || n.Migration != "m" || n.Reason != "rollout" || !strings.Contains(n.Text, "ops reverted migration m") {
		t.Errorf("revert notice = %+v", n)
	}
	if d, ok := n.Detail.(control.RevertDetail); !ok || !cmp.Equal(d, control.RevertDetail{Migrations: []string{"m"}, Version: v}) {
		t.Errorf("revert detail = %#v", n.Detail)
	}
	if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	if got := heard.take(); len(got) != 0 {
		t.Errorf("reverting a reverted migration noticed %+v, want nothing", got)
	}
	if _, err := e.svc.RevertAll(ctx, ops); err != nil {
		t.Fatal(err)
	}
	if n := heard.one(t); n.Event != domain.NoticeRevert || n.Target != "migrations" || !n.Detail.(control.RevertDetail).All ||
		!cmp.Equal(n.Detail.(control.RevertDetail).Migrations, []string{"n"}) {
		t.Errorf("revert-all notice = %+v, want all, flipping n only", n)
	}
	if _, err := e.svc.Resume(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	if n := heard.one(t); n.Event != domain.NoticeResume || n.Migration != "m" || !strings.Contains(n.Text, "resumed") {
		t.Errorf("resume notice = %+v", n)
	}
}

// The guard's revert is noticed as guard.revert, with the partners and
// the evidence; it is not noticed as a person's revert.
func TestNoticeGuardRevert(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.migration(t, "m")
	e.moveTo(t, "m", "acme", domain.StageNew)
	heard := hear(e.svc)
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Guard: []domain.GuardSample{{Migration: "m", Partner: "acme",
		EventID: "evt_1", Outcomes: []string{string(domain.ClassMissing)}}}}); err != nil {
		t.Fatal(err)
	}
	n := heard.one(t)
	d, ok := n.Detail.(control.GuardRevertDetail)
	if n.Event != domain.NoticeGuardRevert || n.Actor != "guard" || !ok || !cmp.Equal(d.Partners, []string{"acme"}) ||
		!strings.Contains(d.Evidence, "evt_1") || !strings.Contains(n.Text, "acme") {
		t.Errorf("guard notice = %+v", n)
	}
	if e.stage(t, "m", "acme").Stage != domain.StageShadow {
		t.Error("acme not reverted")
	}
}

// A cohort's advance and a partner's forward move are noticed as advance;
// a refusal by the gates as gate.refused with the report's explanation;
// a backward move as neither.
func TestNoticeAdvanceAndRefusal(t *testing.T) {
	var mu sync.Mutex
	counts := goodCounts()
	e := newEnv(t, fakeStats{counts: func(string, string, domain.Stage, time.Time) (gate.Counts, error) {
		mu.Lock()
		defer mu.Unlock()
		return counts, nil
	}})
	e.migration(t, "m")
	e.partner(t, "a")
	e.partner(t, "b")
	e.cohort(t, "m", "wave-1", 1, "a", "b")
	heard := hear(e.svc)
	if _, err := e.svc.Advance(ctx, ops, "m", "wave-1", false); err != nil {
		t.Fatal(err)
	}
	n := heard.one(t)
	want := control.AdvanceDetail{Migration: "m", Cohort: "wave-1", Partners: []string{"a", "b"}, From: domain.StageLegacy, To: domain.StageShadow}
	if n.Event != domain.NoticeAdvance || n.Target != "migration/m/cohort/wave-1" || !cmp.Equal(n.Detail, want) {
		t.Errorf("advance notice = %+v, want detail %+v", n, want)
	}

	mu.Lock()
	counts = badCounts()
	mu.Unlock()
	e.clock.Advance(48 * time.Hour)
	_, err := e.svc.Advance(ctx, ops, "m", "wave-1", false)
	wantCode(t, err, domain.CodeGateRefused)
	n = heard.one(t)
	d, ok := n.Detail.(control.GateRefusedDetail)
	if n.Event != domain.NoticeGateRefused || !ok || d.To != domain.StageNew || d.From != domain.StageShadow || d.Verdict != gate.Fail ||
		d.Explanation == "" || !strings.Contains(err.Error(), d.Explanation) || !strings.Contains(n.Text, d.Explanation) {
		t.Errorf("gate.refused notice = %+v", n)
	}
	_, err = e.svc.SetStage(ctx, ops, "m", "a", domain.StageNew, false)
	wantCode(t, err, domain.CodeGateRefused)
	if n := heard.one(t); n.Event != domain.NoticeGateRefused || n.Target != "migration/m/partner/a" || n.Detail.(control.GateRefusedDetail).From != domain.StageShadow {
		t.Errorf("gate.refused notice of a partner = %+v", n)
	}

	if _, err := e.svc.SetStage(ctx, control.Change{Actor: "ops", Reason: "forced"}, "m", "a", domain.StageNew, true); err != nil {
		t.Fatal(err)
	}
	n = heard.one(t)
	if d := n.Detail.(control.AdvanceDetail); n.Event != domain.NoticeAdvance || d.From != domain.StageShadow || d.To != domain.StageNew || !d.Forced {
		t.Errorf("forced move notice = %+v", n)
	}
	if _, err := e.svc.SetStage(ctx, ops, "m", "a", domain.StageShadow, false); err != nil {
		t.Fatal(err)
	}
	if got := heard.take(); len(got) != 0 {
		t.Errorf("a backward move noticed %+v, want nothing", got)
	}
}

// A router that stops reporting is noticed once, when its last report
// gets older than RouterStaleAfter, and again only after it reported
// once more and stopped again.
func TestRouterWatch(t *testing.T) {
	e := newEnv(t, nil)
	heard := hear(e.svc)
	w := control.NewRouterWatch(e.svc)
	e.svc.ReportRouter(control.RouterStatus{ID: "r1"})
	e.svc.ReportRouter(control.RouterStatus{ID: "r2"})
	w.Check(ctx)
	e.clock.Advance(control.RouterStaleAfter)
	e.svc.ReportRouter(control.RouterStatus{ID: "r2"})
	w.Check(ctx)
	if got := heard.take(); len(got) != 0 {
		t.Fatalf("noticed %+v before a router went stale", got)
	}
	e.clock.Advance(time.Second)
	w.Check(ctx)
	n := heard.one(t)
	if d := n.Detail.(control.RouterStaleDetail); n.Event != domain.NoticeRouterStale || d.Router != "r1" || d.Expired || n.Target != "router/r1" {
		t.Errorf("router.stale notice = %+v", n)
	}
	first := n.ID
	e.clock.Advance(time.Minute)
	w.Check(ctx)
	if got := heard.take(); len(got) != 1 || got[0].Detail.(control.RouterStaleDetail).Router != "r2" {
		t.Fatalf("after another minute heard %+v, want r2 alone (r1 was noticed already)", got)
	}
	e.svc.ReportRouter(control.RouterStatus{ID: "r1"})
	w.Check(ctx)
	e.clock.Advance(2 * control.RouterStaleAfter)
	w.Check(ctx)
	if n := heard.one(t); n.Detail.(control.RouterStaleDetail).Router != "r1" || n.ID == first {
		t.Errorf("r1 stopped again: notice %+v, want a new one", n)
	}
	// Another watch (another replica) of the same router and report
	// notices it with the same id, for receivers to deduplicate.
	control.NewRouterWatch(e.svc).Check(ctx)
	var ids []string
	for _, n := range heard.take() {
		ids = append(ids, n.Detail.(control.RouterStaleDetail).Router+"="+n.ID)
	}
	if len(ids) != 2 {
		t.Errorf("a second watch heard %v, want r1 and r2", ids)
	}
}

// A move an approval makes, or finds refused by the gates, is noticed as
// the same move asked for directly by the requester would be (docs/api.md,
// "Events and their detail"): the event, actor, target and detail, with
// the detail naming the change request besides. Only the notice's id, its
// time and its text may differ.
func TestNoticeOfApprovedMoveIsTheDirectMovesNotice(t *testing.T) {
	for _, tc := range []struct {
		name          string
		partner       bool // a partner's stage change, else the cohort's advance
		refused       bool // the gates refuse at the approval
		event, target string
	}{
		{"advance applied", false, false, domain.NoticeAdvance, "migration/m/cohort/wave-1"},
		{"advance refused", false, true, domain.NoticeGateRefused, "migration/m/cohort/wave-1"},
		{"stage applied", true, false, domain.NoticeAdvance, "migration/m/partner/a"},
		{"stage refused", true, true, domain.NoticeGateRefused, "migration/m/partner/a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			move := func(e *env) (*domain.ChangeRequest, error) {
				if tc.partner {
					res, err := e.svc.MoveStage(ctx, alice, "m", "a", domain.StageNew, false)
					return res.Change, err
				}
				res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
				return res.Change, err
			}

			direct, dstats, dheard := movesEnv(t, nil)
			dstats.bad.Store(tc.refused)
			if ch, err := move(direct); ch != nil || (err != nil) != tc.refused {
				t.Fatalf("the direct move = %+v, %v; want it made, or refused when the gates refuse", ch, err)
			}
			want := dheard.one(t)

			approved, astats, aheard := approvalsEnv(t, 1)
			ch, err := move(approved)
			if err != nil || ch == nil {
				t.Fatalf("the move = %+v, %v; want a change request", ch, err)
			}
			aheard.take() // change.pending
			astats.bad.Store(tc.refused)
			if _, err := approved.svc.Approve(ctx, bob, ch.ID); err != nil {
				t.Fatal(err)
			}
			got := aheard.one(t)

			switch d := want.Detail.(type) {
			case control.AdvanceDetail:
				d.Change = ch.ID
				want.Detail = d
			case control.GateRefusedDetail:
				d.Change = ch.ID
				want.Detail = d
			default:
				t.Fatalf("direct notice's detail is a %T", want.Detail)
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(domain.Notice{}, "ID", "At", "Text")); diff != "" {
				t.Errorf("the approved move's notice differs from the direct move's (-direct +approved):\n%s", diff)
			}
			if got.Event != tc.event || got.Target != tc.target || got.Actor != "alice" {
				t.Errorf("notice %s of %s by %s, want %s of %s by alice", got.Event, got.Target, got.Actor, tc.event, tc.target)
			}
			if !got.At.Equal(approved.clock.Now()) || !strings.Contains(got.Text, ch.ID) {
				t.Errorf("notice at %s, text %q; want the approval's time and the change's id", got.At, got.Text)
			}
			raw, err := json.Marshal(got.Detail)
			if err != nil {
				t.Fatal(err)
			}
			var detail map[string]any
			if err := json.Unmarshal(raw, &detail); err != nil {
				t.Fatal(err)
			}
			if detail["change"] != ch.ID || detail["partners"] == nil || detail["force"] != nil || detail["requestedBy"] != nil {
				t.Errorf("detail on the wire = %s, want the move's detail naming change %s", raw, ch.ID)
			}
		})
	}
}
