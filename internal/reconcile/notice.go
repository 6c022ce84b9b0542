package reconcile

import (
	"fmt"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
)

// GapsDetail is the detail of a reconcile.gaps notice.
type GapsDetail struct {
	Reconciliation string `json:"reconciliation"`
	Trigger        string `json:"trigger"`
	State          string `json:"state"`
	Gaps           int    `json:"gaps"`
	Uncertain      int    `json:"uncertain"`
	// Partners are those with gaps, each with its count.
	Partners map[string]int `json:"partners"`
	// Backfill says whether a backfill of the gaps starts now (asked with
	// the reconciliation).
	Backfill bool `json:"backfill"`
}

// noticeGaps tells Options.Notify of a finished reconciliation that found
// gaps; one without gaps is not news.
func (r *Runner) noticeGaps(j *job) {
	if r.opts.Notify == nil {
		return
	}
	var n domain.Notice
	r.update(j, func(j *job) {
		if j.GapCount == 0 {
			return
		}
		d := GapsDetail{Reconciliation: j.ID, Trigger: j.Trigger, State: j.State, Gaps: j.GapCount, Uncertain: j.Uncertain,
			Partners: map[string]int{}, Backfill: j.Backfill != nil}
		var names []string
		for _, p := range j.Partners {
			if p.Gaps > 0 {
				d.Partners[p.Partner] = p.Gaps
				names = append(names, fmt.Sprintf("%s (%d)", p.Partner, p.Gaps))
			}
		}
		next := "backfill them with: switchback reconcile backfill " + j.ID
		if d.Backfill {
			next = "their backfill starts now"
		}
		n = domain.Notice{ID: domain.NewNoticeID(), Event: domain.NoticeReconcileGaps, At: r.opts.Now().UTC(), Actor: j.Actor,
			Target: "reconciliation/" + j.ID, Detail: d,
			Text: fmt.Sprintf("reconciliation %s found %d gaps (PSA changes the pipeline never applied) in %s; %s",
				j.ID, j.GapCount, strings.Join(names, ", "), next)}
	})
	if n.ID != "" {
		r.opts.Notify(n)
	}
}
