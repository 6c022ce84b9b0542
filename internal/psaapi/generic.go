package psaapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

type generic struct {
	c     *caller
	feed  string
	token string
}

var _ Source = (*generic)(nil)

func newGeneric(c *caller, base *url.URL, cfg Config) *generic {
	return &generic{c: c, feed: base.String(), token: cfg.Token}
}

// genericPage is one page of the generic change feed.
type genericPage struct {
	Changes []Change
	Next    string // "" at the end
}

// maxGenericField bounds a change's type and id.
const maxGenericField = 256

// decodeGenericPage reads one page of the generic change feed:
//
//	{"changes": [{"type": "ticket", "id": "123", "updatedAt": "RFC3339", "data": {…}}],
//	 "next": "C2" | null}
//
// type and id are non-empty strings of at most 256 bytes (id may be a JSON
// integer), updatedAt is RFC 3339, data any JSON value but absent or null;
// "deleted": true says the change deleted the entity.
// Fields it does not know are ignored, and names match regardless of case
// (as encoding/json matches them). The error says what is wrong.
func decodeGenericPage(body []byte) (genericPage, error) {
	var raw struct {
		Changes *[]struct {
			Type      *string         `json:"type"`
			ID        json.RawMessage `json:"id"`
			UpdatedAt *string         `json:"updatedAt"`
			Deleted   bool            `json:"deleted"`
			Data      json.RawMessage `json:"data"`
		} `json:"changes"`
		Next *string `json:"next"`
	}
	// Valid first: Unmarshal alone would not say why, and a decoder
	// would take a value followed by a stray "}".
	if !json.Valid(body) {
		return genericPage{}, errors.New("not one JSON value")
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return genericPage{}, errors.New("not a JSON object with changes and next")
	}
	if raw.Changes == nil {
		return genericPage{}, errors.New("changes is missing or null")
	}
	p := genericPage{Changes: make([]Change, 0, len(*raw.Changes))}
	if raw.Next != nil {
		if *raw.Next == "" {
			return genericPage{}, errors.New(`next is "": use null at the end`)
		}
		p.Next = *raw.Next
	}
	for i, c := range *raw.Changes {
		if c.Type == nil || *c.Type == "" || len(*c.Type) > maxGenericField {
			return genericPage{}, fmt.Errorf("change %d: type must be a string of 1 to %d bytes", i, maxGenericField)
		}
		id, err := idString(c.ID)
		if err != nil || len(id) > maxGenericField {
			return genericPage{}, fmt.Errorf("change %d: id must be a string of 1 to %d bytes or an integer", i, maxGenericField)
		}
		if c.UpdatedAt == nil {
			return genericPage{}, fmt.Errorf("change %d: updatedAt is missing", i)
		}
		at, err := time.Parse(time.RFC3339Nano, *c.UpdatedAt)
		if err != nil {
			return genericPage{}, fmt.Errorf("change %d: updatedAt %q is not RFC 3339", i, truncate(*c.UpdatedAt))
		}
		if len(c.Data) == 0 || string(c.Data) == "null" {
			return genericPage{}, fmt.Errorf("change %d: data is missing", i)
		}
		p.Changes = append(p.Changes, Change{Type: *c.Type, ID: id, UpdatedAt: at.UTC(), Deleted: c.Deleted, Data: c.Data})
	}
	return p, nil
}

// Changes asks the feed for the changes since since (the contract makes
// the bound inclusive), follows next until it is null, and keeps the
// changes in the window: the contract has no upper bound. A cursor given
// before is ErrCursorLoop.
func (s *generic) Changes(ctx context.Context, since, until time.Time, fn func(Change) error) error {
	if err := checkWindow(since, until); err != nil {
		return err
	}
	sinceArg := since.UTC().Format(time.RFC3339Nano)
	seen := map[string]bool{}
	cursor := ""
	for page := 1; ; page++ {
		q := url.Values{"since": {sinceArg}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		u := s.feed + "?" + q.Encode()
		what := fmt.Sprintf("change feed page %d", page)
		body, err := s.c.get(ctx, what, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+s.token)
			req.Header.Set("Accept", "application/json")
			return req, nil
		})
		if err != nil {
			return err
		}
		p, err := decodeGenericPage(body)
		if err != nil {
			return malformed(what, s.c.psa, err)
		}
		for _, c := range p.Changes {
			if !inWindow(c.UpdatedAt, since, until) {
				continue
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		if seen[p.Next] || p.Next == cursor {
			return fmt.Errorf("psaapi: %s: %s: %w: the next cursor was given before", s.c.psa, what, ErrCursorLoop)
		}
		seen[p.Next] = true
		cursor = p.Next
	}
}
