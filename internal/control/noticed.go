package control

import (
	"errors"
	"fmt"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// Which changes are notified, and with what: each function here is called
// by the change it reports, after it committed (or, for gate.refused,
// once it was refused), and hands one domain.Notice to s.notice. Their
// Detail types are the contract of each event's "detail" (docs/api.md,
// "Notifications").

// RevertDetail is the detail of a revert or resume notice: a kill switch
// a person turned on or off.
type RevertDetail struct {
	Migrations []string `json:"migrations"` // those whose switch the call flipped
	All        bool     `json:"all"`        // revert.all: every migration at once
	Replay     bool     `json:"replay"`     // the replay through legacy was asked
	Version    uint64   `json:"version"`    // the snapshot version that holds it
}

// GuardRevertDetail is the detail of a guard.revert notice.
type GuardRevertDetail struct {
	Migration string            `json:"migration"`
	Scope     domain.GuardScope `json:"scope"`
	// Partners are those taken off the new pipeline (and replayed).
	Partners []string `json:"partners"`
	// Evidence is why the guard tripped, as the audit log's reason says.
	Evidence string `json:"evidence"`
}

// AdvanceDetail is the detail of an advance notice: a cohort advanced, or
// one partner moved one stage forward (Cohort empty).
type AdvanceDetail struct {
	Migration string       `json:"migration"`
	Cohort    string       `json:"cohort,omitempty"`
	Partners  []string     `json:"partners"`
	From      domain.Stage `json:"from"`
	To        domain.Stage `json:"to"`
	Forced    bool         `json:"forced"`
	// Change is the change request whose approval made the move; empty
	// for a move made when asked.
	Change string `json:"change,omitempty"`
}

// GateRefusedDetail is the detail of a gate.refused notice: a forward
// move the gates refused (Cohort empty for one partner's).
type GateRefusedDetail struct {
	Migration string       `json:"migration"`
	Cohort    string       `json:"cohort,omitempty"`
	Partners  []string     `json:"partners"`
	From      domain.Stage `json:"from"`
	To        domain.Stage `json:"to"`
	Verdict   gate.Verdict `json:"verdict"`
	// Explanation is the report's Explain: what failed, or what data the
	// gates wait for.
	Explanation string `json:"explanation"`
	// Change is the change request whose approval found the gates
	// refusing; empty for a move refused when asked.
	Change string `json:"change,omitempty"`
}

// listed names up to 10 ids for a notice's text, and how many more.
func listed(ids []string) string {
	const shown = 10
	if len(ids) <= shown {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:shown], ", "), len(ids)-shown)
}

// noticeKillSwitch notices a kill switch a person flipped: revert or
// resume. A call that flipped nothing notices nothing.
func (s *Service) noticeKillSwitch(c Change, k KillSwitch, version uint64, flipped []string) {
	if len(flipped) == 0 {
		return
	}
	d := RevertDetail{Migrations: flipped, All: k.Migrations == nil, Replay: k.Replay, Version: version}
	n := domain.Notice{Event: domain.NoticeRevert, Actor: c.Actor, Reason: c.Reason, Detail: d}
	what := "migration " + flipped[0]
	if d.All {
		what = "every migration (" + listed(flipped) + ")"
		n.Target = "migrations"
	} else {
		n.Migration, n.Target = flipped[0], "migration/"+flipped[0]
	}
	if k.On {
		n.Text = oneLine(fmt.Sprintf("%s reverted %s: kill switch on, every partner on legacy%s", c.Actor, what, reasonSuffix(c.Reason)))
	} else {
		n.Event = domain.NoticeResume
		n.Text = oneLine(fmt.Sprintf("%s resumed %s: kill switch off, partners back at their stages%s", c.Actor, what, reasonSuffix(c.Reason)))
	}
	s.notice(n)
}

// noticeGuardRevert notices what the guard reverted (ev.Partners, not
// empty) and why.
func (s *Service) noticeGuardRevert(ms *MigrationState, ev RevertEvent, evidence string) {
	d := GuardRevertDetail{Migration: ms.Key, Scope: ms.Guard.Scope, Partners: ev.Partners, Evidence: evidence}
	n := domain.Notice{Event: domain.NoticeGuardRevert, Actor: "guard", Migration: ms.Key, Target: "migration/" + ms.Key, Reason: evidence, Detail: d}
	if ms.Guard.Scope == domain.ScopeMigration {
		n.Text = fmt.Sprintf("guard reverted migration %s (kill switch on; %d partners were on the new pipeline): %s", ms.Key, len(ev.Partners), evidence)
	} else {
		if len(ev.Partners) == 1 {
			n.Target = "migration/" + ms.Key + "/partner/" + ev.Partners[0]
		}
		n.Text = fmt.Sprintf("guard reverted %s in %s to shadow: %s", listed(ev.Partners), ms.Key, evidence)
	}
	n.Text = oneLine(n.Text)
	s.notice(n)
}

// noticeAdvance notices a cohort's advance, or its refusal by the gates.
func (s *Service) noticeAdvance(c Change, key, cohort string, force bool, out AdvanceResult, err error) {
	target := "migration/" + key + "/cohort/" + cohort
	if err == nil {
		if out.Change != nil {
			return // noticeFiled said change.pending; the advance, if approved, is completeChange's
		}
		s.notice(domain.Notice{Event: domain.NoticeAdvance, Actor: c.Actor, Migration: key, Target: target, Reason: c.Reason,
			Text:   oneLine(fmt.Sprintf("%s advanced cohort %s of %s from %s to %s (%s)%s", c.Actor, cohort, key, out.From, out.To, listed(out.Partners), reasonSuffix(c.Reason))),
			Detail: AdvanceDetail{Migration: key, Cohort: cohort, Partners: out.Partners, From: out.From, To: out.To, Forced: force}})
		return
	}
	r, ok := refusedReport(err)
	if !ok {
		return
	}
	d := GateRefusedDetail{Migration: key, Cohort: cohort, Partners: []string{}, Verdict: r.Verdict, Explanation: r.Explain()}
	cur := s.State()
	if ms, ok := cur.Migrations[key]; ok {
		if m, err := planAdvance(cur, ms, cohort); err == nil {
			d.From, d.To = m.from, m.to
			for _, ps := range m.movers {
				d.Partners = append(d.Partners, ps.Partner)
			}
		}
	}
	s.notice(domain.Notice{Event: domain.NoticeGateRefused, Actor: c.Actor, Migration: key, Target: target, Reason: c.Reason,
		Text:   oneLine(fmt.Sprintf("gates refused %s's advance of cohort %s of %s to %s: %s", c.Actor, cohort, key, d.To, d.Explanation)),
		Detail: d})
}

// noticeStage notices a partner moved one stage forward by SetStage, or
// the gates' refusal of it; a backward move is a revert's (RevertEvent),
// not an advance. before is the state the call began on; moved the stage
// the partner left, zero when it did not move.
func (s *Service) noticeStage(c Change, before *State, key, partner string, moved domain.PartnerStage, to domain.Stage, force bool, out domain.PartnerStage, err error) {
	target := "migration/" + key + "/partner/" + partner
	if err == nil {
		if moved.Partner == "" || to.Index() <= moved.Stage.Index() {
			return
		}
		s.notice(domain.Notice{Event: domain.NoticeAdvance, Actor: c.Actor, Migration: key, Target: target, Reason: c.Reason,
			Text:   oneLine(fmt.Sprintf("%s moved %s in %s from %s to %s%s", c.Actor, partner, key, moved.Stage, out.Stage, reasonSuffix(c.Reason))),
			Detail: AdvanceDetail{Migration: key, Partners: []string{partner}, From: moved.Stage, To: out.Stage, Forced: force}})
		return
	}
	r, ok := refusedReport(err)
	if !ok {
		return
	}
	d := GateRefusedDetail{Migration: key, Partners: []string{partner}, To: to, Verdict: r.Verdict, Explanation: r.Explain()}
	if ms, ok := before.Migrations[key]; ok {
		if p, ok := before.Partners[partner]; ok {
			d.From = ms.StageOf(p).Stage
		}
	}
	s.notice(domain.Notice{Event: domain.NoticeGateRefused, Actor: c.Actor, Migration: key, Target: target, Reason: c.Reason,
		Text:   oneLine(fmt.Sprintf("gates refused %s's move of %s in %s to %s: %s", c.Actor, partner, key, to, d.Explanation)),
		Detail: d})
}

// refusedReport returns the gate report of a gate_refused error.
func refusedReport(err error) (gate.Report, bool) {
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeGateRefused {
		return gate.Report{}, false
	}
	r, ok := de.Detail.(gate.Report)
	return r, ok
}
