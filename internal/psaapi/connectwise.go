package psaapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// cwPageSize is ConnectWise's largest page.
const cwPageSize = 1000

type connectWise struct {
	c        *caller
	endpoint string // …/apis/3.0/service/tickets
	auth     string // the Authorization header
	clientID string
	pageSize int
}

var _ Source = (*connectWise)(nil)

func newConnectWise(c *caller, base *url.URL, cfg Config) *connectWise {
	root := strings.TrimSuffix(base.String(), "/")
	if !strings.HasSuffix(root, "/apis/3.0") {
		root += "/v4_6_release/apis/3.0"
	}
	cred := cfg.CompanyID + "+" + cfg.PublicKey + ":" + cfg.PrivateKey
	return &connectWise{
		c:        c,
		endpoint: root + "/service/tickets",
		auth:     "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)),
		clientID: cfg.ClientID,
		pageSize: cwPageSize,
	}
}

// cwTicket is what the client reads of a ticket; the rest is Data.
type cwTicket struct {
	ID   json.RawMessage `json:"id"`
	Info struct {
		LastUpdated string `json:"lastUpdated"`
	} `json:"_info"`
}

// Changes asks for the tickets with lastUpdated >= since (to the second
// below: the API's conditions take whole seconds), ordered by id, page by
// page until a page is short, and keeps those in the window. See the
// package documentation for why until is applied here and not in the
// conditions.
func (s *connectWise) Changes(ctx context.Context, since, until time.Time, fn func(Change) error) error {
	if err := checkWindow(since, until); err != nil {
		return err
	}
	cond := "lastUpdated>=[" + since.UTC().Truncate(time.Second).Format(time.RFC3339) + "]"
	var repeats pageRepeats
	for page := 1; ; page++ {
		q := url.Values{}
		q.Set("conditions", cond)
		q.Set("orderBy", "id asc")
		q.Set("page", strconv.Itoa(page))
		q.Set("pageSize", strconv.Itoa(s.pageSize))
		u := s.endpoint + "?" + q.Encode()
		what := fmt.Sprintf("service/tickets page %d", page)
		body, err := s.c.get(ctx, what, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", s.auth)
			req.Header.Set("clientId", s.clientID)
			req.Header.Set("Accept", "application/json")
			return req, nil
		})
		if err != nil {
			return err
		}
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return malformed(what, s.c.psa, fmt.Errorf("not a JSON array of tickets"))
		}
		if len(items) > 0 && repeats.same(body) {
			return fmt.Errorf("psaapi: %s: %s: %w: the same tickets as page %d", s.c.psa, what, ErrCursorLoop, page-1)
		}
		for i, raw := range items {
			var t cwTicket
			if err := json.Unmarshal(raw, &t); err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %d: not an object", i))
			}
			id, err := idString(t.ID)
			if err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %d: %v", i, err))
			}
			at, err := parseTime(t.Info.LastUpdated)
			if err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %s: _info.lastUpdated: %v", id, err))
			}
			if !inWindow(at, since, until) {
				continue
			}
			if err := fn(Change{Type: "ticket", ID: id, UpdatedAt: at, Data: raw}); err != nil {
				return err
			}
		}
		if len(items) < s.pageSize {
			return nil
		}
	}
}
