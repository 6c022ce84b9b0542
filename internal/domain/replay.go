package domain

import "time"

// Replay filters.
const (
	ReplayAll        = "all"        // every event in the window
	ReplayFailed     = "failed"     // events dead-lettered
	ReplayMismatched = "mismatched" // events whose shadow comparison was not equal
)

// ReplayRequest asks for a window of journaled events to be sent again
// through a pipeline, with their original ids.
type ReplayRequest struct {
	Migration string    `json:"migration"`
	Partners  []string  `json:"partners"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Pipeline  string    `json:"pipeline"`
	Filter    string    `json:"filter"`
	// Rate caps the events sent per second; 0 means the router's default.
	Rate int `json:"rate,omitempty"`
	// AwaitComparisons keeps a mismatched replay open after its first
	// pass, for the comparisons still to come of the events the new
	// pipeline applied in the window: a revert's replay must not miss a
	// mismatch recorded after it passed the event. Each late mismatch is
	// replayed as it lands; at the router's deadline, the events still
	// without a comparison, and those whose comparison was a coverage gap,
	// are replayed as unknown.
	AwaitComparisons bool `json:"awaitComparisons,omitempty"`
}

// Validate checks the request's fields.
func (r ReplayRequest) Validate() error {
	if err := CheckID("migration", r.Migration); err != nil {
		return err
	}
	if len(r.Partners) == 0 {
		return Errorf(CodeInvalid, "partners must name at least one partner")
	}
	for _, p := range r.Partners {
		if err := CheckID("partner", p); err != nil {
			return err
		}
	}
	if r.From.IsZero() || r.To.IsZero() || !r.From.Before(r.To) {
		return Errorf(CodeInvalid, "from and to must be RFC 3339 times with from before to: the window is [from, to)")
	}
	if r.Pipeline != "legacy" && r.Pipeline != "new" {
		return Errorf(CodeInvalid, "pipeline %q is unknown: use legacy or new", r.Pipeline)
	}
	switch r.Filter {
	case ReplayAll, ReplayFailed, ReplayMismatched:
	default:
		return Errorf(CodeInvalid, "filter %q is unknown: use all, failed or mismatched", r.Filter)
	}
	if r.AwaitComparisons && r.Filter != ReplayMismatched {
		return Errorf(CodeInvalid, "awaitComparisons needs the filter mismatched: only comparisons are awaited")
	}
	if r.Rate < 0 || r.Rate > 100000 {
		return Errorf(CodeInvalid, "rate must be between 0 and 100000 events per second")
	}
	return nil
}

// Replay job statuses.
const (
	ReplayQueued  = "queued"
	ReplayRunning = "running"
	ReplayDone    = "done"
	ReplayFailedS = "failed"
)

// ReplayJob is a replay and its progress.
type ReplayJob struct {
	ID         string        `json:"id"`
	Status     string        `json:"status"`
	Request    ReplayRequest `json:"request"`
	Total      int           `json:"total"`
	Done       int           `json:"done"`
	Failed     int           `json:"failed"`
	Error      string        `json:"error,omitempty"`
	CreatedAt  time.Time     `json:"createdAt"`
	FinishedAt time.Time     `json:"finishedAt,omitzero"`
	// AwaitUntil is when a job that awaits comparisons stops waiting.
	AwaitUntil time.Time `json:"awaitUntil,omitzero"`
	// AwaitingComparison counts the events of the window, applied by the
	// new pipeline or not yet delivered, whose comparison has not landed.
	AwaitingComparison int `json:"awaitingComparison"`
	// Unknown counts the events applied by the new pipeline that were
	// never compared (no comparison by AwaitUntil, or a coverage gap):
	// replayed, since nothing says the new pipeline got them right.
	Unknown int `json:"unknown"`
	// UnknownEvents are the first MaxUnknownEvents of their ids.
	UnknownEvents []string `json:"unknownEvents,omitempty"`
	// InFlight counts, on a tier of routers, the events of the window
	// that other routers still held without an outcome when the job
	// started (a job that awaits comparisons waits for them, and counts
	// those left at its deadline): live delivery takes them, routed as of
	// its moment, and the job does not.
	InFlight int `json:"inFlight,omitempty"`
	// RunBy, TakenFrom and Takeover are set on a tier of routers, for a
	// replay asked of every router (ReplayClaim). RunBy is the router
	// that runs it: this one, or another, in which case this router
	// records the job done with nothing to send and watches the claim, to
	// take it over should that router stop renewing it. TakenFrom is the
	// router this one took the job over from, and Takeover the claim's
	// count of takeovers then (as last seen, when RunBy is another
	// router): the control service's sum counts only the runner with the
	// highest.
	RunBy     string `json:"runBy,omitempty"`
	TakenFrom string `json:"takenFrom,omitempty"`
	Takeover  int    `json:"takeover,omitempty"`
	// Cursor is where the last event sent stands among each partner's
	// events: a restarted router resumes after it.
	Cursor map[string]ReplayCursor `json:"cursor,omitempty"`
}

// ReplayClaim is, on a tier of routers, which router runs a replay asked
// of every router: Router, until it marks the claim Done; a claim its
// router stopped renewing is taken over by another router, which counts
// the takeover and names the router it took it From.
type ReplayClaim struct {
	Router   string `json:"router"`
	Done     bool   `json:"done,omitempty"`
	Takeover int    `json:"takeover,omitempty"`
	From     string `json:"from,omitempty"`
}

// MaxUnknownEvents bounds the ids a job lists in UnknownEvents: the count
// is exact, the list is for finding examples.
const MaxUnknownEvents = 100

// ReplayCursor is an event's place: received at At, with sequence Seq.
type ReplayCursor struct {
	At  time.Time `json:"at"`
	Seq uint64    `json:"seq"`
}
