package webui

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Reconciler runs reconciliations against the journal of the router in
// this process (reconcile.Runner). The UI asks it everything: it
// never judges a gap nor decides whether a backfill may run.
type Reconciler interface {
	// Start validates req, audits it and runs it in the background;
	// errors are *domain.Error (invalid_argument, not_found).
	Start(ctx context.Context, req wire.ReconcileRequest, actor, reason string) (wire.Reconciliation, error)
	// Backfill sends job id's gaps; conflict while it runs or when it
	// found none, not_found for an unknown id.
	Backfill(ctx context.Context, id, actor, reason string) (wire.Reconciliation, error)
	// Job returns one job whole; not_found for an unknown id.
	Job(id string) (wire.Reconciliation, error)
	// Jobs returns the jobs kept, newest first, without gaps.
	Jobs() []wire.Reconciliation
}

// errNoReconciler answers a reconciliation asked of a process without a
// router, whose journal is what a reconciliation reads.
var errNoReconciler = domain.Errorf(domain.CodeConflict,
	"reconciliations need serve's embedded router: this process runs none (--no-ingress)")

// reconcileKey is what the reconciliation pages follow: it changes with
// any job's state or counts, or its backfill's.
func (u *UI) reconcileKey() string {
	if u.opts.Reconciler == nil {
		return "none"
	}
	h := sha256.New()
	var b [8]byte
	n := func(v int) {
		binary.BigEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	for _, j := range u.opts.Reconciler.Jobs() {
		h.Write([]byte(j.ID + "\x00" + j.State + "\x00"))
		for _, p := range j.Partners {
			h.Write([]byte(p.State + "\x00"))
			for _, v := range []int{p.Changes, p.Checked, p.Reflected, p.InFlight, p.Uncertain, p.Gaps} {
				n(v)
			}
		}
		if bf := j.Backfill; bf != nil {
			h.Write([]byte(bf.State + "\x00"))
			for _, v := range []int{bf.Skipped, bf.Events, bf.Journaled, bf.Duplicates, bf.Applied, bf.DeadLettered, bf.Pending} {
				n(v)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// --- the list, and the form that starts one

type reconciliationsPage struct {
	base
	// Enabled is false when no router runs in this process.
	Enabled  bool
	Jobs     []wire.Reconciliation
	Partners []reconcilePartner
}

// reconcilePartner is a partner the start form offers; one without a PSA
// API is shown but cannot be picked.
type reconcilePartner struct {
	ID, Name string
	PSAAPI   bool
	Host     string
}

// reconciliations serves GET /reconciliations.
func (u *UI) reconciliations(w http.ResponseWriter, r *http.Request, s session) error {
	data := reconciliationsPage{Enabled: u.opts.Reconciler != nil}
	data.base = u.base(w, r, &s, "reconciliations", "reconciliations")
	if data.Enabled {
		data.Jobs = u.opts.Reconciler.Jobs()
		for _, p := range u.svc.State().Partners {
			data.Partners = append(data.Partners, reconcilePartner{ID: p.ID, Name: p.Name, PSAAPI: p.PSAAPI != nil, Host: p.PSAAPI.Host()})
		}
		slices.SortFunc(data.Partners, func(a, b reconcilePartner) int { return cmp.Compare(a.ID, b.ID) })
	}
	u.render(w, r, http.StatusOK, "reconciliations", &data)
	return nil
}

// --- one job

type reconciliationPage struct {
	base
	Job     wire.Reconciliation
	Reasons map[wire.GapReason]string
}

// reconciliation serves GET /reconciliations/{id}.
func (u *UI) reconciliation(w http.ResponseWriter, r *http.Request, s session) error {
	if u.opts.Reconciler == nil {
		return errNoReconciler
	}
	job, err := u.opts.Reconciler.Job(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	data := reconciliationPage{Job: job, Reasons: reasonWords}
	data.base = u.base(w, r, &s, "reconciliations", "reconciliations")
	u.render(w, r, http.StatusOK, "reconciliation", &data)
	return nil
}

// reasonWords say what each reason of a gap or an uncertain change means,
// as docs/api.md ("The rule") does.
var reasonWords = map[wire.GapReason]string{
	"no_event":           "no event about the entity was applied",
	"older_only":         "only events older than the change were applied",
	"dead_lettered":      "the event of the change was dead-lettered",
	"shadow_only":        "only a shadow ran the event, in dry-run",
	"delete_not_applied": "the PSA deleted it; no delete was applied",
	"within_skew":        "an event arrived within the clocks' skew of the change",
	"precision":          "the clocks' precision cannot order the event and the change",
	"recent":             "changed too recently: its webhook may be on its way",
}

// --- actions

// startReconciliation serves POST /reconciliations: the partners ticked,
// the window from "from" (a duration ago such as 2h, or RFC 3339) to "to"
// (RFC 3339, or empty for now), the runner's default skew and settle.
func (u *UI) startReconciliation(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	const next = "/reconciliations"
	if u.opts.Reconciler == nil {
		return next, errNoReconciler
	}
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	req := wire.ReconcileRequest{Partners: r.PostForm["partner"], Backfill: r.PostForm.Get("backfill") == "yes"}
	if len(req.Partners) == 0 {
		return next, domain.Errorf(domain.CodeInvalid, "tick at least one partner to reconcile")
	}
	if req.From, err = wire.ParseFrom(strings.TrimSpace(r.PostForm.Get("from")), u.opts.Now()); err != nil {
		return next, err
	}
	if to := strings.TrimSpace(r.PostForm.Get("to")); to != "" {
		if req.To, err = time.Parse(time.RFC3339, to); err != nil {
			return next, domain.Errorf(domain.CodeInvalid, "to must be an RFC 3339 time such as 2026-03-01T12:00:00Z, or empty for now")
		}
	}
	job, err := u.opts.Reconciler.Start(r.Context(), req, c.Actor, c.Reason)
	if err != nil {
		return next, err
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: fmt.Sprintf("Reconciliation %s started for %s: this page follows its progress.",
		job.ID, strings.Join(req.Partners, ", "))})
	return next + "/" + job.ID, nil
}

// backfillReconciliation serves POST /reconciliations/{id}/backfill.
func (u *UI) backfillReconciliation(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	if u.opts.Reconciler == nil {
		return "/reconciliations", errNoReconciler
	}
	id := mux.Vars(r)["id"]
	if err := domain.CheckID("reconciliation", id); err != nil {
		return "/reconciliations", err
	}
	next := "/reconciliations/" + id
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	job, err := u.opts.Reconciler.Backfill(r.Context(), id, c.Actor, c.Reason)
	if err != nil {
		return next, err
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: fmt.Sprintf("Backfill of %d %s started: each is journaled, then sent through its partner's current primary pipeline; the counts below follow it.",
		job.GapCount, pluralize(job.GapCount, "gap", "gaps"))})
	return next + "#backfill", nil
}
