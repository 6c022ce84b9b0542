package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// Change requests in the UI: the pending ones of a migration on its page
// and every one on /changes, each with its approve and reject dialogs;
// the header's badge counts the pending ones. The control service decides
// everything (who may approve, whether the move is made); the UI renders
// its answers.

// recentEnded is how many ended change requests a migration's page shows.
const recentEnded = 5

// changeView is a change request as the pages show it.
type changeView struct {
	domain.ChangeRequest
	What string // "cohort wave-1 from shadow to new"
	// Left is how many approvals it still waits for.
	Left int
	// Mine is set when the signed-in token asked for it (it may reject,
	// not approve); Approved when it approved it already.
	Mine, Approved bool
	Gate           *gateTable // a failed change's report
	Result         string     // what an applied change moved, in words
}

func viewChange(c domain.ChangeRequest, me string) changeView {
	v := changeView{ChangeRequest: c, What: c.What(), Left: max(0, c.Required-len(c.Approvals)),
		Mine: c.RequestedBy == me, Approved: c.Approved(me)}
	if c.Force {
		v.What += " (forced past the gates)"
	}
	var rep gate.Report
	if len(c.Report) > 0 && json.Unmarshal(c.Report, &rep) == nil {
		t := newGateTable(rep)
		v.Gate = &t
	}
	if c.State == domain.ChangeApplied {
		var moved struct {
			Partners []string `json:"partners"`
			Partner  string   `json:"partner"`
		}
		if json.Unmarshal(c.Result, &moved) == nil {
			if moved.Partner != "" {
				moved.Partners = []string{moved.Partner}
			}
			v.Result = fmt.Sprintf("moved %d %s: %s", len(moved.Partners), pluralize(len(moved.Partners), "partner", "partners"), strings.Join(moved.Partners, ", "))
		}
	}
	return v
}

// changeLists are a page's change requests: pending first, then ended.
type changeLists struct {
	Pending, Ended []changeView
	// Policy says which moves need approvals, "" when none do (a
	// migration's page only).
	Policy string
}

// changeLists returns the change requests of migration key ("" for
// every one), at most ended ended ones (-1 for all kept).
func (u *UI) changeLists(key, me string, ended int) changeLists {
	var out changeLists
	for _, c := range u.svc.Changes(control.ChangeFilter{Migration: key}) {
		switch {
		case c.State == domain.ChangePending:
			out.Pending = append(out.Pending, viewChange(c, me))
		case ended < 0 || len(out.Ended) < ended:
			out.Ended = append(out.Ended, viewChange(c, me))
		}
	}
	return out
}

// formatApprovals writes a migration's approvals setting in one line.
func formatApprovals(p *domain.ApprovalPolicy) string {
	if p == nil {
		return ""
	}
	stages := make([]string, len(p.Stages))
	for i, s := range p.Stages {
		stages[i] = string(s)
	}
	return fmt.Sprintf("moves into %s wait for %d %s from other operators, for %s at most",
		strings.Join(stages, " or "), p.Required, pluralize(p.Required, "approval", "approvals"), formatSeconds(p.EffectiveTTL().Seconds()))
}

// pendingChanges counts the pending change requests of every migration:
// the header's badge.
func (u *UI) pendingChanges() int {
	return len(u.svc.Changes(control.ChangeFilter{State: domain.ChangePending}))
}

type changesPage struct {
	base
	Changes changeLists
}

// changes serves GET /changes: every change request kept, pending first.
func (u *UI) changes(w http.ResponseWriter, r *http.Request, s session) error {
	data := changesPage{Changes: u.changeLists("", s.name, -1)}
	data.base = u.base(w, r, &s, "changes", "version")
	u.render(w, r, http.StatusOK, "changes", &data)
	return nil
}

// changeAction reads the id of a change action and where to go after it.
func changeAction(r *http.Request) (id, next string, err error) {
	id = mux.Vars(r)["id"]
	next = back(r, "/changes")
	if !domain.ValidChangeID(id) {
		return "", next, domain.Errorf(domain.CodeNotFound, "change request %q does not exist", id)
	}
	return id, next, nil
}

// approveChange serves POST /changes/{id}/approve.
func (u *UI) approveChange(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	id, next, err := changeAction(r)
	if err != nil {
		return next, err
	}
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	ch, err := u.svc.Approve(r.Context(), c, id)
	if err != nil {
		// Approving one's own change is refused by rule, not for want of
		// a role: said on the page, not as an error page.
		if domain.ErrorCode(err) == domain.CodePermissionDenied {
			u.sessions.addFlash(s.id, flash{Kind: "error", Text: domain.ErrorMessage(err)})
			return next, nil
		}
		return next, err
	}
	kind, msg := "ok", ""
	switch ch.State {
	case domain.ChangeApplied:
		msg = fmt.Sprintf("Approved change %s: %s in %s is applied.", ch.ID, ch.What(), ch.Migration)
	case domain.ChangeFailed:
		kind, msg = "error", fmt.Sprintf("Approved change %s, but its move failed: %s", ch.ID, ch.Failure)
	default:
		left := ch.Required - len(ch.Approvals)
		msg = fmt.Sprintf("Approved change %s: waiting for %d more %s.", ch.ID, left, pluralize(left, "approval", "approvals"))
	}
	u.sessions.addFlash(s.id, flash{Kind: kind, Text: msg})
	return next, nil
}

// rejectChange serves POST /changes/{id}/reject; the reason is required.
func (u *UI) rejectChange(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	id, next, err := changeAction(r)
	if err != nil {
		return next, err
	}
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	ch, err := u.svc.Reject(r.Context(), c, id)
	if err != nil {
		return next, err
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: fmt.Sprintf("Rejected change %s: %s in %s will not be made.", ch.ID, ch.What(), ch.Migration)})
	return next, nil
}

// filedFlash says that a move waits for approvals instead of happening.
func filedFlash(c domain.ChangeRequest) string {
	left := c.Required - len(c.Approvals)
	return fmt.Sprintf("Change request %s filed: %s in %s is waiting for %d %s from other operators (until %s).",
		c.ID, c.What(), c.Migration, left, pluralize(left, "approval", "approvals"), formatTime(c.ExpiresAt))
}
