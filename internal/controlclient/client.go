// Package client calls the control service's HTTP API, for the CLI and the
// demo: one typed method per call (api.go), and the audit log's verification
// against witnesses (audit.go). It does not print: internal/console does.
package controlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one control service with one token.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the service at base (e.g. http://127.0.0.1:8080).
func New(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Gate    json.RawMessage `json:"-"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Do sends method path with body (nil for none) and decodes a 2xx answer
// into out (nil to discard). A non-2xx answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.DoStatus(ctx, method, path, body, out)
	return err
}

// DoStatus is Do that also returns the answer's status (0 when none came),
// for calls whose 2xx statuses differ in meaning (201 created, 200
// replaced, 202 a change request instead of the move).
func (c *Client) DoStatus(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the control service at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error *APIError       `json:"error"`
			Gate  json.RawMessage `json:"gate"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == nil {
			return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(data))}
		}
		e.Error.Status, e.Error.Gate = resp.StatusCode, e.Gate
		return resp.StatusCode, e.Error
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

// Path joins escaped segments into an API path.
func Path(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}
