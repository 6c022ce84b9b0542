package psaapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Source lists what a partner's PSA changed in a window. It is what a
// reconciliation needs from a PSA, and all it needs.
type Source interface {
	// Changes calls fn once for each entity whose last change, as the PSA
	// records it now, is in [since, until), paging through everything the
	// PSA answers. An entity may be reported more than once (pages of a
	// live data set shift) and the order is the PSA's. It returns the
	// first error of fn as it is, or an error that wraps one of
	// ErrInvalidWindow, ErrCredentialsRefused, ErrRefused,
	// ErrUnavailable, ErrMalformed or ErrCursorLoop, or ctx's error.
	Changes(ctx context.Context, since, until time.Time, fn func(Change) error) error
}

// Change is one entity as the PSA holds it now.
type Change struct {
	// Type is the entity type: "ticket" for the three vendors, the
	// change feed's own type for generic.
	Type string `json:"type"`
	// ID is the PSA's id of the entity, as a string.
	ID string `json:"id"`
	// UpdatedAt is when the PSA says the entity last changed, in UTC.
	UpdatedAt time.Time `json:"updatedAt"`
	// Deleted says that change deleted the entity: only the generic feed
	// reports deletions (the vendors' APIs no longer list a deleted
	// ticket).
	Deleted bool `json:"deleted,omitempty"`
	// Data is the entity as the PSA sent it.
	Data json.RawMessage `json:"data"`
}

// Errors of a Source. Their messages name no credential.
var (
	// ErrInvalidConfig: Config.Validate refused the configuration.
	ErrInvalidConfig = errors.New("invalid PSA API configuration")
	// ErrInvalidWindow: since is not before until.
	ErrInvalidWindow = errors.New("the window's start is not before its end")
	// ErrCredentialsRefused: the PSA answered 401 or 403 (for HaloPSA, also
	// a token request refused with 400, as OAuth2 answers a wrong client).
	ErrCredentialsRefused = errors.New("credentials refused by the PSA")
	// ErrRefused: the PSA refused the request with another 4xx status.
	ErrRefused = errors.New("request refused by the PSA")
	// ErrUnavailable: the PSA kept answering 429 or 5xx, or could not be
	// reached, for every attempt, or asked to wait longer than a client
	// waits.
	ErrUnavailable = errors.New("PSA unavailable or rate limiting")
	// ErrMalformed: a page is not what the vendor's API documents (not
	// JSON, a missing id or date, larger than MaxPageBytes, or a next page
	// on another host).
	ErrMalformed = errors.New("malformed answer from the PSA")
	// ErrCursorLoop: a page does not advance: the PSA gave a cursor or next
	// page URL it gave before, or the same page again.
	ErrCursorLoop = errors.New("PSA paging does not advance")
)

func checkWindow(since, until time.Time) error {
	if !since.Before(until) {
		return fmt.Errorf("psaapi: %w: %s, %s", ErrInvalidWindow, since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// inWindow reports whether t is in [since, until).
func inWindow(t, since, until time.Time) bool {
	return !t.Before(since) && t.Before(until)
}

// parseTime reads a vendor's timestamp: RFC 3339, or without a zone, which
// the three vendors' REST APIs use for UTC.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is not RFC 3339", truncate(s))
	}
	return t.UTC(), nil
}

// idString reads an entity id, a JSON number or a non-empty string.
func idString(raw json.RawMessage) (string, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && n != "" {
		if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return string(n), nil
		}
		return "", fmt.Errorf("id %s is not an integer", truncate(string(n)))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && strings.TrimSpace(s) != "" {
		return s, nil
	}
	return "", errors.New("id missing or not a number or string")
}

// truncate keeps what an error quotes from a PSA short.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
