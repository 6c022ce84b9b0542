package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httperr"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/psa"
)

// keptHeaders are the request headers journaled with an event: enough to
// know where it came from, never a credential or a signature.
var keptHeaders = []string{"Content-Type", "User-Agent", "Webhook-Id", "Webhook-Timestamp", "X-Forwarded-For"}

type hookAnswer struct {
	Events []hookEvent `json:"events"`
}

type hookEvent struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// hook takes one delivery: it verifies it with the partner's scheme,
// journals its events durably and only then answers 202. A delivery the
// journal cannot take now gets 429 with Retry-After, which every PSA
// retries (a 5xx would lose a ConnectWise callback).
func (rt *Router) hook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := mux.Vars(r)["partner"]
	tbl, current := rt.table()
	if tbl.version == 0 {
		// No snapshot yet: the partner may well exist. PSAs retry a 429.
		rt.metrics.webhooks.WithLabelValues("unknown", "busy").Inc()
		httperr.Write(w, &domain.Error{Code: domain.CodeRouterStarting, RetryAfter: 2 * time.Second,
			Message: "the router has no snapshot from the control service yet: retry"})
		return
	}
	p, known := tbl.partners[id]
	if domain.ValidID(id) && !known && !current {
		// The partner may have been created after this router's snapshot:
		// a 404 could make the PSA give up. A 429, not the 503 one would
		// expect: every PSA retries a 429, and ConnectWise drops a callback
		// answered 5xx (its PSA is unknown here, as the partner is).
		rt.metrics.webhooks.WithLabelValues("unknown", "snapshot_not_current").Inc()
		httperr.Write(w, &domain.Error{Code: domain.CodeSnapshotNotCurrent, RetryAfter: 5 * time.Second,
			Message: "no partner " + quote(id) + " in this router's snapshot, which may not be the control service's latest: retry"})
		return
	}
	if !domain.ValidID(id) || !known {
		rt.metrics.webhooks.WithLabelValues("unknown", "unknown_partner").Inc()
		httperr.Write(w, domain.Errorf(domain.CodeNotFound, "no partner %s is known to this router", quote(id)))
		return
	}
	kind := string(p.PSA)
	if err := rt.admit(id); err != nil {
		// The pipelines are slower than the PSAs: hold new deliveries back
		// at the door, where the PSAs retry, rather than in memory.
		rt.metrics.webhooks.WithLabelValues(kind, "busy").Inc()
		httperr.Write(w, err)
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, rt.opts.BodyLimit), r.ContentLength, rt.opts.BodyLimit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			rt.metrics.webhooks.WithLabelValues(kind, "too_large").Inc()
			httperr.Write(w, domain.Errorf(domain.CodeTooLarge, "the body is larger than the router accepts"))
			return
		}
		httperr.Write(w, domain.Errorf(domain.CodeMalformedBody, "the body could not be read"))
		return
	}
	envs, err := rt.opts.Decoder.DecodePartner(r.Context(), psa.Partner{Kind: kind, Secret: p.Secret, CompanyID: p.CompanyID}, r.Header, body)
	if err != nil {
		var de *domain.Error
		if !errors.As(err, &de) {
			// The decoder's errors are all *domain.Error; anything else is
			// still the delivery's fault, never a 5xx that loses it.
			de = &domain.Error{Code: domain.CodeMalformedBody, Message: "the delivery could not be read", Err: err}
		}
		status := httperr.Status(de)
		outcome := "malformed"
		switch status {
		case http.StatusUnauthorized:
			outcome = "unauthenticated"
		case http.StatusTooManyRequests:
			// A signing key that could not be fetched now: the PSA retries.
			outcome = "busy"
		}
		rt.metrics.webhooks.WithLabelValues(kind, outcome).Inc()
		rt.log.Info("webhook refused", "partner", id, "psa", kind, "status", status, "code", de.Code)
		httperr.Write(w, de)
		return
	}
	now := rt.opts.Now().UTC()
	headers := map[string]string{}
	for _, h := range keptHeaders {
		if v := r.Header.Get(h); v != "" {
			headers[h] = v
		}
	}
	events := make([]journal.Event, len(envs))
	for i, e := range envs {
		events[i] = journal.Event{Partner: id, PSA: kind, Type: e.EntityType, SourceType: e.SourceType, Action: e.Action,
			EntityID: e.EntityID, DeliveryID: e.DeliveryID, ReceivedAt: now, EntityUpdatedAt: e.UpdatedAt, Headers: headers, Payload: e.Payload}
	}
	res, err := rt.journalEvents(r.Context(), events)
	if err != nil {
		rt.metrics.webhooks.WithLabelValues(kind, "busy").Inc()
		rt.log.Warn("journal refused a delivery", "partner", id, "err", err)
		var de *domain.Error
		if !errors.As(err, &de) {
			de = &domain.Error{Code: domain.CodeJournalBusy, RetryAfter: time.Second,
				Message: "the router cannot journal this delivery now: retry"}
		}
		httperr.Write(w, de)
		return
	}
	rt.metrics.ackLatency.Observe(time.Since(start).Seconds())
	ans := hookAnswer{Events: make([]hookEvent, len(res))}
	allDup := true
	for i, a := range res {
		ans.Events[i] = hookEvent{ID: a.ID, Type: events[i].Type, Duplicate: a.Duplicate}
		if a.Duplicate {
			rt.metrics.events.WithLabelValues("duplicate").Inc()
		} else {
			allDup = false
			rt.metrics.events.WithLabelValues("journaled").Inc()
		}
	}
	outcome := "accepted"
	if allDup {
		outcome = "duplicate"
	}
	rt.metrics.webhooks.WithLabelValues(kind, outcome).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(ans)
}

// journalEvents makes events durable and has the new ones delivered: in
// the router's journal, handed to delivery at once (this never blocks; if
// the process dies now, they are pending in the journal and resumed at
// start), or in the tier's journal, whose routers are handed them
// (takeFromTier). Errors from the tier are *domain.Error; the journal's
// are its own.
func (rt *Router) journalEvents(ctx context.Context, events []journal.Event) ([]journal.Appended, error) {
	if rt.opts.Tier != nil {
		return rt.opts.Tier.Publish(ctx, events)
	}
	res, err := rt.opts.Journal.Append(ctx, events)
	if err != nil {
		return nil, err
	}
	for i, a := range res {
		if !a.Duplicate {
			ev := events[i]
			ev.Seq, ev.ID, ev.State = a.Seq, a.ID, journal.StateJournaled
			rt.submit(ev)
		}
	}
	return res, nil
}

// readBody is io.ReadAll with room for the declared length made at once
// (at most limit), rather than grown from 512 bytes by doubling.
func readBody(r io.Reader, declared, limit int64) ([]byte, error) {
	var b bytes.Buffer
	if declared > 0 && declared <= limit {
		b.Grow(int(declared) + bytes.MinRead)
	}
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + strings.ReplaceAll(s, `"`, `'`) + `"`
}
