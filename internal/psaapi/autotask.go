package psaapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type autotask struct {
	c               *caller
	base            *url.URL
	endpoint        string // …/v1.0/Tickets/query
	username        string
	secret          string
	integrationCode string
}

var _ Source = (*autotask)(nil)

func newAutotask(c *caller, base *url.URL, cfg Config) *autotask {
	root := strings.TrimSuffix(base.String(), "/")
	if !strings.HasSuffix(root, "/v1.0") {
		root += "/v1.0"
	}
	return &autotask{
		c: c, base: base, endpoint: root + "/Tickets/query",
		username: cfg.Username, secret: cfg.Secret, integrationCode: cfg.IntegrationCode,
	}
}

type atFilter struct {
	Op    string `json:"op"`
	Field string `json:"field"`
	Value string `json:"value"`
}

type atPage struct {
	Items       []json.RawMessage `json:"items"`
	PageDetails *struct {
		NextPageURL *string `json:"nextPageUrl"`
	} `json:"pageDetails"`
}

type atTicket struct {
	ID               json.RawMessage `json:"id"`
	LastActivityDate string          `json:"lastActivityDate"`
}

// Changes queries the tickets with since <= lastActivityDate < until and
// follows pageDetails.nextPageUrl until it is null. A next page URL must
// be on BaseURL's scheme and host (the headers carry the secret) and never
// one given before.
func (s *autotask) Changes(ctx context.Context, since, until time.Time, fn func(Change) error) error {
	if err := checkWindow(since, until); err != nil {
		return err
	}
	search, err := json.Marshal(struct {
		Filter []atFilter `json:"filter"`
	}{[]atFilter{
		{"gte", "lastActivityDate", since.UTC().Format(time.RFC3339Nano)},
		{"lt", "lastActivityDate", until.UTC().Format(time.RFC3339Nano)},
	}})
	if err != nil {
		return fmt.Errorf("psaapi: %s: %w", s.c.psa, err)
	}
	next := s.endpoint + "?" + url.Values{"search": {string(search)}}.Encode()
	seen := map[string]bool{}
	for page := 1; ; page++ {
		seen[next] = true
		u := next
		what := fmt.Sprintf("Tickets/query page %d", page)
		body, err := s.c.get(ctx, what, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("UserName", s.username)
			req.Header.Set("Secret", s.secret)
			req.Header.Set("ApiIntegrationCode", s.integrationCode)
			req.Header.Set("Accept", "application/json")
			return req, nil
		})
		if err != nil {
			return err
		}
		var p atPage
		if err := json.Unmarshal(body, &p); err != nil || p.Items == nil || p.PageDetails == nil {
			return malformed(what, s.c.psa, fmt.Errorf("not an object with items and pageDetails"))
		}
		for i, raw := range p.Items {
			var t atTicket
			if err := json.Unmarshal(raw, &t); err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %d: not an object", i))
			}
			id, err := idString(t.ID)
			if err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %d: %v", i, err))
			}
			at, err := parseTime(t.LastActivityDate)
			if err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %s: lastActivityDate: %v", id, err))
			}
			if !inWindow(at, since, until) {
				continue
			}
			if err := fn(Change{Type: "ticket", ID: id, UpdatedAt: at, Data: raw}); err != nil {
				return err
			}
		}
		if p.PageDetails.NextPageURL == nil || *p.PageDetails.NextPageURL == "" {
			return nil
		}
		nu, err := url.Parse(*p.PageDetails.NextPageURL)
		if err != nil || nu.Scheme != s.base.Scheme || nu.Host != s.base.Host {
			return malformed(what, s.c.psa, fmt.Errorf("nextPageUrl is not on %s://%s", s.base.Scheme, s.base.Host))
		}
		next = nu.String()
		if seen[next] {
			return fmt.Errorf("psaapi: %s: %s: %w: nextPageUrl given before", s.c.psa, what, ErrCursorLoop)
		}
	}
}
