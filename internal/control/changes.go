package control

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// Change requests: a forward move into a stage that the migration's
// approvals policy names waits for other operators' approvals instead of
// happening. Advance and MoveStage file the request (stages.go); Approve
// makes the move once enough tokens approved, judging the gates again at
// that moment; Reject and expiry end it without a move. Every step is one
// apply, audited; the requests are stored beside the state (Tx.PutChange)
// and kept in memory as a changeBook, published like the tokens: they are
// not part of the snapshot, so they never change its version.

// MaxEndedChanges is how many ended change requests a store keeps, the
// newest by when they ended; every pending one is kept. Ending one more
// deletes the oldest in the same transaction.
const MaxEndedChanges = 500

// pruneAtOnce bounds the deletes of one transaction (etcd takes at most
// 128 operations); a store copied with more ended requests than the bound
// shrinks over the next changes.
const pruneAtOnce = 32

// expireAtOnce bounds the requests one ExpireChanges call ends: each is a
// write and an audit entry of one transaction, which also writes the audit
// head and prunes up to pruneAtOnce ended requests. etcd takes at most 128
// operations in a transaction: 2×40 + 1 + 32 = 113 leaves room.
const expireAtOnce = 40

// approveAttempts bounds how often Approve judges the gates again when the
// move changed between its judgment and the change lock (another approval,
// a partner moved).
const approveAttempts = 3

// errRejudge is what an approval's decision returns when the gates it
// judged are not those of the move under the change lock.
var errRejudge = errors.New("the move changed while its gates were judged")

// changeBook is the change requests a service knows. It is immutable once
// published: a change builds a new one.
type changeBook struct {
	all  []domain.ChangeRequest // newest first: by RequestedAt, then id
	byID map[string]int
	key  string // changes with any request's state or approvals
}

func newChangeBook(cs []domain.ChangeRequest) *changeBook {
	b := &changeBook{all: slices.Clone(cs), byID: make(map[string]int, len(cs))}
	slices.SortFunc(b.all, func(x, y domain.ChangeRequest) int {
		if c := y.RequestedAt.Compare(x.RequestedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	h := sha256.New()
	var n [8]byte
	for i, c := range b.all {
		b.byID[c.ID] = i
		h.Write([]byte(c.ID))
		h.Write([]byte(c.State))
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Approvals)))
		h.Write(n[:])
	}
	b.key = hex.EncodeToString(h.Sum(nil)[:8])
	return b
}

func (b *changeBook) get(id string) (domain.ChangeRequest, bool) {
	i, ok := b.byID[id]
	if !ok {
		return domain.ChangeRequest{}, false
	}
	return b.all[i], true
}

// put returns the book with cs in it, each replacing the one of its id,
// and the ids of the ended requests beyond MaxEndedChanges, the oldest,
// which it no longer holds.
func (b *changeBook) put(cs ...domain.ChangeRequest) (*changeBook, []string) {
	all := slices.Clone(b.all)
	for _, c := range cs {
		if i, ok := b.byID[c.ID]; ok {
			all[i] = c
		} else {
			all = append(all, c)
		}
	}
	var ended []domain.ChangeRequest
	for _, c := range all {
		if c.State != domain.ChangePending {
			ended = append(ended, c)
		}
	}
	if len(ended) <= MaxEndedChanges {
		return newChangeBook(all), nil
	}
	slices.SortFunc(ended, func(x, y domain.ChangeRequest) int {
		if c := endedAt(x).Compare(endedAt(y)); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	drop := map[string]bool{}
	var ids []string
	for _, c := range ended[:min(len(ended)-MaxEndedChanges, pruneAtOnce)] {
		drop[c.ID] = true
		ids = append(ids, c.ID)
	}
	return newChangeBook(slices.DeleteFunc(all, func(c domain.ChangeRequest) bool { return drop[c.ID] })), ids
}

func endedAt(c domain.ChangeRequest) time.Time {
	if c.EndedAt != nil {
		return *c.EndedAt
	}
	return c.RequestedAt
}

// putChanges returns the next book with cs and the writes that store them
// and prune the oldest ended requests.
func putChanges(book *changeBook, cs ...domain.ChangeRequest) (*changeBook, func(Tx) error) {
	next, drop := book.put(cs...)
	return next, func(tx Tx) error {
		for _, c := range cs {
			if err := tx.PutChange(c); err != nil {
				return err
			}
		}
		for _, id := range drop {
			if err := tx.DeleteChange(id); err != nil {
				return err
			}
		}
		return nil
	}
}

// fileChange returns the plan that files ch, a change request of the
// move it describes in migration ms for c, at now; or, when a request of
// the same move is pending, an empty plan and that request (a conflict
// when it differs in force). isNew reports which. The caller holds the
// change lock and has checked the move.
func (s *Service) fileChange(cur *State, now time.Time, c Change, ms *MigrationState, ch domain.ChangeRequest) (_ plan, _ domain.ChangeRequest, isNew bool, _ error) {
	ch.Migration = ms.Key
	book := s.changes.Load()
	for _, o := range book.all {
		if o.Pending(now) && o.SameMove(ch) {
			if o.Force != ch.Force {
				// Returning it would drop the caller's force (or its gates)
				// without a word.
				return plan{}, o, false, domain.Errorf(domain.CodeConflict, "change request %s of the same move is pending with force %v: approve or reject it before asking with force %v", o.ID, o.Force, ch.Force)
			}
			return plan{}, o, false, nil
		}
	}
	pol := *ms.Approvals
	ch.ID = domain.NewChangeID()
	ch.RequestedBy, ch.Reason = c.Actor, c.Reason
	ch.RequestedAt, ch.ExpiresAt = now, now.Add(pol.EffectiveTTL())
	ch.State, ch.Required, ch.Approvals = domain.ChangePending, pol.Required, []domain.Approval{}
	next, writes := putChanges(book, ch)
	return plan{changes: next, writes: writes,
		records: []record{{action: "change.request", target: ch.Target(), after: ch}}}, ch, true, nil
}

// noticeFiled reports a new change request, once it committed.
func (s *Service) noticeFiled(ch domain.ChangeRequest) {
	s.log.Info("change request filed", "change", ch.ID, "migration", ch.Migration, "move", ch.What(), "by", ch.RequestedBy, "required", ch.Required)
	s.notice(domain.Notice{Event: domain.NoticeChangePending, At: ch.RequestedAt, Actor: ch.RequestedBy,
		Migration: ch.Migration, Target: ch.Target(), Reason: ch.Reason,
		Text: fmt.Sprintf("%s asks to move %s in %s: waiting for %d %s (change %s)", ch.RequestedBy, ch.What(), ch.Migration,
			ch.Required, plural(ch.Required, "approval", "approvals"), ch.ID),
		Detail: ch})
}

// ChangeFilter selects change requests.
type ChangeFilter struct {
	State     domain.ChangeState // "" for every state
	Migration string             // "" for every migration
}

// Changes returns the change requests that f selects, newest first, as
// they stand now (a pending request past its expiry is expired).
func (s *Service) Changes(f ChangeFilter) []domain.ChangeRequest {
	now := s.now().UTC()
	out := []domain.ChangeRequest{}
	for _, c := range s.changes.Load().all {
		c = c.AsOf(now)
		if (f.State == "" || c.State == f.State) && (f.Migration == "" || c.Migration == f.Migration) {
			out = append(out, c)
		}
	}
	return out
}

// ChangesKey changes whenever a change request is filed, approved or
// ended: what a live page follows.
func (s *Service) ChangesKey() string { return s.changes.Load().key }

// ChangeRequest returns the change request id as it stands now, or a
// not_found error.
func (s *Service) ChangeRequest(id string) (domain.ChangeRequest, error) {
	c, ok := s.changes.Load().get(id)
	if !ok {
		return domain.ChangeRequest{}, domain.Errorf(domain.CodeNotFound, "change request %q does not exist (ended ones are kept for the latest %d)", id, MaxEndedChanges)
	}
	return c.AsOf(s.now().UTC()), nil
}

// approvable returns why token by may not approve c, if it may not: c is
// not pending (conflict), by asked for it (permission_denied: four eyes
// means another's), or by approved it already (conflict: each token
// counts once).
func approvable(c domain.ChangeRequest, by string) error {
	switch {
	case c.State != domain.ChangePending:
		return domain.Errorf(domain.CodeConflict, "change request %s is %s: only a pending one can be approved", c.ID, c.State)
	case by == c.RequestedBy:
		return domain.Errorf(domain.CodePermissionDenied, "you (%s) asked for change request %s: another operator's token must approve it", by, c.ID)
	case c.Approved(by):
		return domain.Errorf(domain.CodeConflict, "the token %s has approved change request %s already: each token counts once; it waits for %d more from other tokens",
			by, c.ID, c.Required-len(c.Approvals))
	}
	return nil
}

// changeMove is the move of a change request on a state: the partners
// that move and the gates that judge them.
type changeMove struct {
	cohort cohortMove          // an advance's
	from   domain.PartnerStage // a stage change's
	movers []domain.PartnerStage
	gates  domain.Gates
	gated  bool // the gates judge it: a gated stage, not forced
}

// changeMoveOf works out c's move on cur, or why it can no longer be
// made: the migration, cohort or partner is gone, the cohort or partner
// is no longer at the stage the change moves from, or the kill switch is
// on.
func changeMoveOf(cur *State, c domain.ChangeRequest) (changeMove, error) {
	ms, err := cur.Migration(c.Migration)
	if err != nil {
		return changeMove{}, err
	}
	var mv changeMove
	switch c.Kind {
	case domain.ChangeAdvance:
		m, err := planAdvance(cur, ms, c.Cohort)
		if err != nil {
			return mv, err
		}
		if m.from != c.From || m.to != c.To {
			return mv, domain.Errorf(domain.CodeConflict, "cohort %q is at %s now, not at %s as when the change was asked for: ask again for the move it needs now", c.Cohort, m.from, c.From)
		}
		mv.cohort, mv.movers, mv.gates = m, m.movers, cohortGates(ms, m.cohort)
	case domain.ChangeStage:
		p, err := cur.Partner(c.Partner)
		if err != nil {
			return mv, err
		}
		mv.from = ms.StageOf(p)
		if mv.from.Stage != c.From {
			return mv, domain.Errorf(domain.CodeConflict, "partner %q is at %s now, not at %s as when the change was asked for: ask again for the move it needs now", c.Partner, mv.from.Stage, c.From)
		}
		mv.movers, mv.gates = []domain.PartnerStage{mv.from}, ms.GatesOf(c.Partner)
	default:
		return mv, domain.Errorf(domain.CodeConflict, "change request %s is of kind %q, which this switchback cannot apply", c.ID, c.Kind)
	}
	if err := forwardAllowed(ms, Change{Reason: c.Reason}, c.Force); err != nil {
		return mv, err
	}
	mv.gated = !c.Force && c.From.Gated()
	return mv, nil
}

// changeJudgment is the gate report of a change's move, and the partners
// it judged.
type changeJudgment struct {
	movers []domain.PartnerStage
	report gate.Report
}

// judgeChange judges the gates of c's move on cur, outside the change
// lock (they read comparison counts); nil when there is nothing to judge
// (the move is not gated, or cannot be made: the decision under the lock
// finds out why again).
func (s *Service) judgeChange(ctx context.Context, cur *State, c domain.ChangeRequest) (*changeJudgment, error) {
	mv, err := changeMoveOf(cur, c)
	if err != nil || !mv.gated {
		return nil, nil
	}
	r, err := s.judge(ctx, c.Migration, mv.gates, mv.movers, s.now().UTC())
	if err != nil {
		return nil, err
	}
	return &changeJudgment{movers: mv.movers, report: r}, nil
}

// Approve records the approval of change request id by c.Actor, with
// c.Reason (optional). The approval that brings the request to its
// required count makes the move, in the same transaction: the gates are
// judged again at that moment (unless the request was forced), and the
// move is audited as cohort.advance or stage.set with the requester as
// its actor and a reason naming the request and its approvers. When the
// move can no longer be made (the gates refuse, the kill switch is on,
// the cohort or partner moved meanwhile), the request ends failed with
// the reason, and the gate report when the gates refused: Approve returns
// it without an error, since the approval itself was taken.
//
// Errors: not_found for an unknown request; permission_denied when
// c.Actor asked for it; conflict when it is not pending or c.Actor
// approved it already; invalid_argument for a reason CheckReason refuses.
func (s *Service) Approve(ctx context.Context, c Change, id string) (domain.ChangeRequest, error) {
	if err := c.Validate(); err != nil {
		return domain.ChangeRequest{}, err
	}
	s.CatchUp(ctx) // an unreachable store is the change's to refuse
	for attempt := 1; ; attempt++ {
		pre, err := s.ChangeRequest(id)
		if err != nil {
			return pre, err
		}
		if err := approvable(pre, c.Actor); err != nil {
			return pre, err
		}
		var judged *changeJudgment
		if len(pre.Approvals)+1 >= pre.Required {
			if judged, err = s.judgeChange(ctx, s.State(), pre); err != nil {
				return pre, err
			}
		}
		var out domain.ChangeRequest
		var news *domain.Notice
		_, err = s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
			news = nil
			book := s.changes.Load()
			stored, ok := book.get(id)
			if !ok {
				return plan{}, domain.Errorf(domain.CodeNotFound, "change request %q does not exist", id)
			}
			ch := stored.AsOf(now)
			if err := approvable(ch, c.Actor); err != nil {
				return plan{}, err
			}
			ch.Approvals = append(slices.Clone(ch.Approvals), domain.Approval{By: c.Actor, At: now, Reason: c.Reason})
			approve := record{action: "change.approve", target: ch.Target(),
				before: map[string]any{"approvals": len(ch.Approvals) - 1, "required": ch.Required},
				after:  map[string]any{"approvals": len(ch.Approvals), "required": ch.Required}}
			if len(ch.Approvals) < ch.Required {
				out = ch
				next, writes := putChanges(book, ch)
				return plan{changes: next, writes: writes, records: []record{approve}}, nil
			}
			p, ended, n, err := completeChange(cur, book, now, c, ch, judged)
			if err != nil {
				return plan{}, err
			}
			out, news = ended, n
			p.records = append([]record{approve}, p.records...)
			return p, nil
		})
		switch {
		case errors.Is(err, errRejudge) && attempt < approveAttempts:
			continue
		case errors.Is(err, errRejudge):
			return pre, domain.Errorf(domain.CodeConflict, "the move of change request %s kept changing while its gates were judged: try again", id)
		case err != nil:
			return pre, err
		}
		if out.State != domain.ChangePending {
			s.log.Info("change request ended", "change", out.ID, "migration", out.Migration, "state", out.State, "failure", out.Failure)
		}
		if news != nil {
			s.notice(*news)
		}
		return out, nil
	}
}

// completeChange is the plan of the approval that completes ch: its move,
// or its failure. judged must be the gate report of the move as it is on
// cur, else it returns errRejudge. Its notice, to send once the plan
// committed, is the move's advance or the gates' gate.refused, as the
// same move asked directly would send (changeNotice); nil for a failure
// that is not the gates'.
func completeChange(cur *State, book *changeBook, now time.Time, c Change, ch domain.ChangeRequest, judged *changeJudgment) (plan, domain.ChangeRequest, *domain.Notice, error) {
	end := domain.ChangeEnd{By: c.Actor, At: now, Reason: c.Reason}
	mv, err := changeMoveOf(cur, ch)
	if err == nil && ch.RequestedBy == AutopilotActor {
		err = autopilotMayApply(cur.Migrations[ch.Migration], now)
	}
	var report *gate.Report
	if err == nil && mv.gated {
		if judged == nil || !slices.Equal(judged.movers, mv.movers) {
			return plan{}, ch, nil, errRejudge
		}
		if !judged.report.Pass {
			err, report = refused(judged.report), &judged.report
		}
	}
	if err != nil {
		failed := ch.End(domain.ChangeFailed, end)
		failed.Failure = domain.SanitizeReason(domain.ErrorMessage(err))
		var news *domain.Notice
		if report != nil {
			failed.Report = mustJSON(boundReport(*report))
			d := GateRefusedDetail{Migration: ch.Migration, Cohort: ch.Cohort, Partners: partnerIDs(mv.movers), From: ch.From, To: ch.To,
				Verdict: report.Verdict, Explanation: report.Explain(), Change: ch.ID}
			news = changeNotice(ch, now, domain.NoticeGateRefused, d,
				fmt.Sprintf("gates refused %s's move of %s in %s, approved in change %s: %s", ch.RequestedBy, ch.What(), ch.Migration, ch.ID, d.Explanation))
		}
		next, writes := putChanges(book, failed)
		return plan{changes: next, writes: writes, records: []record{{action: "change.fail", target: ch.Target(),
			after: map[string]any{"state": failed.State, "failure": failed.Failure}, actor: domain.ChangeActor, reason: failed.Failure}}}, failed, news, nil
	}
	var p plan
	var result any
	var d AdvanceDetail
	switch ch.Kind {
	case domain.ChangeAdvance:
		var out AdvanceResult
		p, out = advancePlan(cur, ch.Migration, mv.cohort, ch.Force, now)
		result, d = out, AdvanceDetail{Cohort: out.Cohort, Partners: out.Partners, From: out.From, To: out.To}
	default:
		var moved domain.PartnerStage
		p, moved = stagePlan(cur, ch.Migration, mv.from, ch.To, ch.Force, now)
		result, d = moved, AdvanceDetail{Partners: []string{moved.Partner}, From: mv.from.Stage, To: moved.Stage}
	}
	d.Migration, d.Forced, d.Change = ch.Migration, ch.Force, ch.ID
	approvers := make([]string, len(ch.Approvals))
	for i, a := range ch.Approvals {
		approvers[i] = a.By
	}
	why := fmt.Sprintf("change request %s, approved by %s", ch.ID, strings.Join(approvers, ", "))
	if ch.Reason != "" {
		why += ": " + ch.Reason
	}
	for i := range p.records {
		p.records[i].actor, p.records[i].reason = ch.RequestedBy, domain.SanitizeReason(why)
	}
	applied := ch.End(domain.ChangeApplied, end)
	applied.Result = mustJSON(result)
	next, writes := putChanges(book, applied)
	move := p.writes
	p.writes = func(tx Tx) error {
		if err := move(tx); err != nil {
			return err
		}
		return writes(tx)
	}
	p.changes = next
	news := changeNotice(ch, now, domain.NoticeAdvance, d,
		fmt.Sprintf("%s moved %s in %s, approved by %s in change %s%s", ch.RequestedBy, ch.What(), ch.Migration, strings.Join(approvers, ", "), ch.ID, reasonSuffix(ch.Reason)))
	return p, applied, news, nil
}

// changeNotice is the notice of ch's move, made or refused at now: that
// of the same move asked for directly by its requester (the actor the
// move's audit entry names), with its target, and detail that names ch.
func changeNotice(ch domain.ChangeRequest, now time.Time, event string, detail any, text string) *domain.Notice {
	target := "migration/" + ch.Migration + "/cohort/" + ch.Cohort
	if ch.Kind == domain.ChangeStage {
		target = "migration/" + ch.Migration + "/partner/" + ch.Partner
	}
	return &domain.Notice{Event: event, At: now, Actor: ch.RequestedBy, Migration: ch.Migration, Target: target,
		Reason: ch.Reason, Text: oneLine(text), Detail: detail}
}

// boundReport keeps the partners of r that did not pass, at most
// domain.MaxChangeReportPartners: what a failed change request stores.
func boundReport(r gate.Report) gate.Report {
	kept := []gate.PartnerReport{}
	for _, p := range r.Partners {
		if !p.Pass && len(kept) < domain.MaxChangeReportPartners {
			kept = append(kept, p)
		}
	}
	r.Partners = kept
	return r
}

// Reject ends pending change request id as rejected by c.Actor, with
// c.Reason, which is required. The requester may reject their own
// request, to withdraw it.
//
// Errors: invalid_argument without a reason; not_found for an unknown
// request; conflict when it is not pending.
func (s *Service) Reject(ctx context.Context, c Change, id string) (domain.ChangeRequest, error) {
	if strings.TrimSpace(c.Reason) == "" {
		return domain.ChangeRequest{}, domain.Errorf(domain.CodeInvalid, "rejecting a change request needs a reason: say why, for the requester and the audit log")
	}
	var out domain.ChangeRequest
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		book := s.changes.Load()
		stored, ok := book.get(id)
		if !ok {
			return plan{}, domain.Errorf(domain.CodeNotFound, "change request %q does not exist", id)
		}
		ch := stored.AsOf(now)
		if ch.State != domain.ChangePending {
			return plan{}, domain.Errorf(domain.CodeConflict, "change request %s is %s: only a pending one can be rejected", id, ch.State)
		}
		out = ch.End(domain.ChangeRejected, domain.ChangeEnd{By: c.Actor, At: now, Reason: c.Reason})
		next, writes := putChanges(book, out)
		return plan{changes: next, writes: writes, records: []record{{action: "change.reject", target: ch.Target(),
			before: map[string]any{"state": domain.ChangePending}, after: map[string]any{"state": out.State}}}}, nil
	})
	if err != nil {
		return domain.ChangeRequest{}, err
	}
	s.log.Info("change request rejected", "change", id, "by", c.Actor)
	return out, nil
}

// ExpireChanges stores as expired the pending change requests past their
// expiry (at most expireAtOnce, 40, a call: the rest at the next),
// audited as change.expire by switchback, and returns how many. Reads show
// them expired already; this makes the store say so, so that replicas and
// exports agree. serve runs it every 30 s.
func (s *Service) ExpireChanges(ctx context.Context) (int, error) {
	due := func(now time.Time) []domain.ChangeRequest {
		var out []domain.ChangeRequest
		for _, c := range slices.Backward(s.changes.Load().all) {
			if c.State == domain.ChangePending && !c.Pending(now) && len(out) < expireAtOnce {
				out = append(out, c.AsOf(now))
			}
		}
		return out
	}
	if len(due(s.now().UTC())) == 0 {
		return 0, nil // nothing to write: no need for the change lock
	}
	n := 0
	_, err := s.apply(ctx, Change{Actor: domain.ChangeActor, Reason: "not approved in time"}, func(cur *State, now time.Time) (plan, error) {
		ended := due(now)
		n = len(ended)
		if n == 0 {
			return plan{}, nil
		}
		next, writes := putChanges(s.changes.Load(), ended...)
		p := plan{changes: next, writes: writes}
		for _, c := range ended {
			p.records = append(p.records, record{action: "change.expire", target: c.Target(),
				before: map[string]any{"state": domain.ChangePending}, after: map[string]any{"state": c.State, "expiresAt": c.ExpiresAt}})
		}
		return p, nil
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.log.Info("change requests expired", "count", n)
	}
	return n, nil
}

// RunChangeExpiry calls ExpireChanges every period until ctx ends; serve
// runs it. A failure is logged and tried again at the next period.
func (s *Service) RunChangeExpiry(ctx context.Context, period time.Duration) {
	every(ctx, period, func() {
		if _, err := s.ExpireChanges(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("expiring change requests failed; trying again", "err", err)
		}
	})
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
