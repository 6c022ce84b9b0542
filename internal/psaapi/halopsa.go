package psaapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// haloPageSize is the page size the client asks HaloPSA for.
const haloPageSize = 100

type halo struct {
	c            *caller
	tokenURL     string
	tickets      string
	clientID     string
	clientSecret string
	pageSize     int
}

var _ Source = (*halo)(nil)

func newHalo(c *caller, base *url.URL, cfg Config) *halo {
	root := strings.TrimSuffix(base.String(), "/")
	tokenURL := root + "/auth/token"
	if cfg.Tenant != "" {
		tokenURL += "?" + url.Values{"tenant": {cfg.Tenant}}.Encode()
	}
	return &halo{
		c: c, tokenURL: tokenURL, tickets: root + "/api/Tickets",
		clientID: cfg.ClientID, clientSecret: cfg.ClientSecret, pageSize: haloPageSize,
	}
}

// haloToken is an access token and when to stop using it.
type haloToken struct {
	value string
	until time.Time
}

// token asks the authorisation server for a client-credentials token.
// OAuth2 answers a wrong client with 400 (invalid_client) as well as 401,
// so a 400 is ErrCredentialsRefused here.
func (s *halo) token(ctx context.Context) (haloToken, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.clientID},
		"client_secret": {s.clientSecret},
		"scope":         {"all"},
	}.Encode()
	body, err := s.c.get(ctx, "auth/token", func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, strings.NewReader(form))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	})
	if statusOf(err) == http.StatusBadRequest {
		return haloToken{}, fmt.Errorf("psaapi: %s: auth/token: %w (HTTP 400)", s.c.psa, ErrCredentialsRefused)
	}
	if err != nil {
		return haloToken{}, err
	}
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return haloToken{}, malformed("auth/token", s.c.psa, fmt.Errorf("no access_token"))
	}
	if t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer") {
		return haloToken{}, malformed("auth/token", s.c.psa, fmt.Errorf("token_type %q is not Bearer", truncate(t.TokenType)))
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	// Renew a minute early: a page must not be refused mid-window for a
	// token that expired on the way.
	return haloToken{value: t.AccessToken, until: s.c.retry.now().Add(life - time.Minute)}, nil
}

type haloPage struct {
	RecordCount *int              `json:"record_count"`
	Tickets     []json.RawMessage `json:"tickets"`
}

type haloTicket struct {
	ID             json.RawMessage `json:"id"`
	LastUpdate     string          `json:"last_update"`
	LastActionDate string          `json:"lastactiondate"`
}

// Changes asks for the tickets whose last update is on or after since
// (a second earlier: Halo's date search takes whole seconds and its
// bounds are not documented as inclusive), ordered by id, page by page
// (pageinate=true, page_no, page_size) until record_count is reached or a
// page is short, and keeps those in the window. It takes a token first
// and once more when one expires or an API call answers 401.
func (s *halo) Changes(ctx context.Context, since, until time.Time, fn func(Change) error) error {
	if err := checkWindow(since, until); err != nil {
		return err
	}
	tok, err := s.token(ctx)
	if err != nil {
		return err
	}
	start := since.UTC().Truncate(time.Second).Add(-time.Second).Format("2006-01-02T15:04:05")
	var repeats pageRepeats
	seenCount := 0
	for page := 1; ; page++ {
		q := url.Values{}
		q.Set("pageinate", "true")
		q.Set("page_size", strconv.Itoa(s.pageSize))
		q.Set("page_no", strconv.Itoa(page))
		q.Set("order", "id")
		q.Set("orderdesc", "false")
		q.Set("datesearch", "lastupdate")
		q.Set("startdate", start)
		u := s.tickets + "?" + q.Encode()
		what := fmt.Sprintf("api/Tickets page %d", page)
		var body []byte
		for renewed := false; ; renewed = true {
			if !s.c.retry.now().Before(tok.until) {
				if tok, err = s.token(ctx); err != nil {
					return err
				}
			}
			bearer := "Bearer " + tok.value
			body, err = s.c.get(ctx, what, func(ctx context.Context) (*http.Request, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				if err != nil {
					return nil, err
				}
				req.Header.Set("Authorization", bearer)
				req.Header.Set("Accept", "application/json")
				return req, nil
			})
			if err == nil || renewed || !errors.Is(err, ErrCredentialsRefused) {
				break
			}
			// A token revoked or expired early: one new token, one more try.
			tok.until = time.Time{}
		}
		if err != nil {
			return err
		}
		var p haloPage
		if err := json.Unmarshal(body, &p); err != nil || p.Tickets == nil {
			return malformed(what, s.c.psa, fmt.Errorf("not an object with tickets"))
		}
		if len(p.Tickets) > 0 && repeats.same(body) {
			return fmt.Errorf("psaapi: %s: %s: %w: the same tickets as page %d", s.c.psa, what, ErrCursorLoop, page-1)
		}
		for i, raw := range p.Tickets {
			var t haloTicket
			if err := json.Unmarshal(raw, &t); err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %d: not an object", i))
			}
			id, err := idString(t.ID)
			if err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %d: %v", i, err))
			}
			last := t.LastUpdate
			if last == "" {
				last = t.LastActionDate
			}
			at, err := parseTime(last)
			if err != nil {
				return malformed(what, s.c.psa, fmt.Errorf("ticket %s: last_update: %v", id, err))
			}
			if !inWindow(at, since, until) {
				continue
			}
			if err := fn(Change{Type: "ticket", ID: id, UpdatedAt: at, Data: raw}); err != nil {
				return err
			}
		}
		seenCount += len(p.Tickets)
		if len(p.Tickets) < s.pageSize || (p.RecordCount != nil && seenCount >= *p.RecordCount) {
			return nil
		}
	}
}
