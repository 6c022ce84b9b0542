package webui

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The autopilot in the UI: a panel on the migration page with what the
// control service says it does now (control.Service.AutopilotStatus, the
// one rule for its steps and its status), and the pause and resume
// dialogs. The UI never decides whether the autopilot may move; it words
// the service's answer.

// autopilotView is a migration's autopilot as its page shows it.
type autopilotView struct {
	wire.AutopilotStatus
	// Enabled is the policy's switch: an autopilot that is off has no
	// pause button, only a resume one if it was paused.
	Enabled bool
	// Label names the state in a word or two; Tone is its colour class.
	Label, Tone string
	Windows     []windowView
	// Err says why the status could not be judged (the gates' counts
	// are unavailable); the rest of the panel is shown all the same.
	Err string
}

// windowView is one window of the policy, in its own time zone.
type windowView struct {
	Days     string // "mon, tue, wed, thu"
	From, To string
	TimeZone string // "UTC" when the policy leaves it empty
}

// autopilotLabels word each state of wire.AutopilotStatus; tones are
// CSS classes, never the only signal.
var autopilotLabels = map[string]struct{ label, tone string }{
	wire.AutopilotOff:      {"Off", "ap-off"},
	wire.AutopilotPaused:   {"Paused", "ap-stopped"},
	wire.AutopilotReverted: {"Waiting: kill switch on", "ap-stopped"},
	wire.AutopilotClosed:   {"Waiting for its window", "ap-wait"},
	wire.AutopilotLimit:    {"Daily limit reached", "ap-wait"},
	wire.AutopilotDone:     {"Done", "ap-off"},
	wire.AutopilotApproval: {"Waiting for approvals", "ap-wait"},
	wire.AutopilotGates:    {"Waiting for the gates", "ap-wait"},
	wire.AutopilotReady:    {"Ready to move", "ap-ready"},
}

// autopilotView returns the autopilot of ms, nil when it has no policy.
func (u *UI) autopilotView(r *http.Request, ms *control.MigrationState) *autopilotView {
	if ms.Autopilot == nil {
		return nil
	}
	st, err := u.svc.AutopilotStatus(r.Context(), ms.Key)
	v := &autopilotView{AutopilotStatus: st, Enabled: ms.Autopilot.Enabled}
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeInternal {
			u.log.Error("ui autopilot status failed", "migration", ms.Key, "err", err)
		}
		v.Err = domain.ErrorMessage(err)
	}
	if l, ok := autopilotLabels[st.State]; ok {
		v.Label, v.Tone = l.label, l.tone
	} else {
		v.Label, v.Tone = "Unknown", "ap-wait"
	}
	for _, w := range ms.Autopilot.Windows {
		wv := windowView{Days: strings.Join(w.Days, ", "), From: w.From, To: w.To, TimeZone: w.TimeZone}
		if wv.TimeZone == "" {
			wv.TimeZone = "UTC"
		}
		v.Windows = append(v.Windows, wv)
	}
	return v
}

// pauseAutopilot serves POST /migrations/{key}/autopilot/pause.
func (u *UI) pauseAutopilot(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	return u.autopilotSwitch(r, s, true)
}

// resumeAutopilot serves POST /migrations/{key}/autopilot/resume. While
// the kill switch is on, the service refuses it with a conflict, shown
// on the page.
func (u *UI) resumeAutopilot(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	return u.autopilotSwitch(r, s, false)
}

func (u *UI) autopilotSwitch(r *http.Request, s session, pause bool) (string, error) {
	key := mux.Vars(r)["key"]
	if err := domain.CheckID("migration", key); err != nil {
		return "/", err
	}
	next := back(r, "/migrations/"+key+"#autopilot")
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	verb := "resuming"
	if pause {
		verb = "pausing"
	}
	// Whoever finds it paused, or moving again, reads why in the audit
	// log and on the page: the dialogs require a reason, and so does this.
	if c.Reason == "" {
		return next, domain.Errorf(domain.CodeInvalid, "%s the autopilot needs a reason: say why, for the other operators and the audit log", verb)
	}
	was := false
	if ms, err := u.svc.State().Migration(key); err == nil && ms.AutopilotState != nil {
		was = ms.AutopilotState.Paused
	}
	var st wire.AutopilotStatus
	if pause {
		st, err = u.svc.PauseAutopilot(r.Context(), c, key)
	} else {
		st, err = u.svc.ResumeAutopilot(r.Context(), c, key)
	}
	if err != nil {
		return next, err
	}
	var msg string
	switch {
	case pause && was:
		msg = fmt.Sprintf("The autopilot of %s was already paused: nothing changed.", key)
	case pause:
		msg = fmt.Sprintf("Paused the autopilot of %s: it makes no move until an operator resumes it.", key)
	case !was:
		msg = fmt.Sprintf("The autopilot of %s was not paused: nothing changed.", key)
	default:
		msg = fmt.Sprintf("Resumed the autopilot of %s. %s", key, st.Explanation)
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: msg})
	return next, nil
}

// formatUntil writes how long until t, from now.
func formatUntil(d time.Duration) string {
	if d < time.Second {
		return "now"
	}
	return "in " + formatSeconds(d.Seconds())
}
