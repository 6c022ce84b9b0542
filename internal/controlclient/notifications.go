package controlclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/switchbackhq/switchback/internal/wire"
)

// NotificationInput is the body of PUT /v1/notifications/{name}. An empty
// URL or Secret is left out, which keeps the target's (neither is ever
// returned); both are needed to create a standard target. An empty
// Format is the service's default, standard.
type NotificationInput struct {
	URL    string   `json:"url,omitempty"`
	Events []string `json:"events"`
	Format string   `json:"format,omitempty"`
	Secret string   `json:"secret,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// PutNotification creates or replaces a notification target, and reports
// whether it created it. Errors are *APIError: invalid_argument naming
// the field, permission_denied for a token that is not an admin's.
func (c *Client) PutNotification(ctx context.Context, name string, in NotificationInput) (wire.NotificationTarget, bool, error) {
	var out wire.NotificationTarget
	status, err := c.DoStatus(ctx, http.MethodPut, Path("v1", "notifications", name), in, &out)
	return out, status == http.StatusCreated, err
}

// Notifications lists the targets with their totals, by name.
func (c *Client) Notifications(ctx context.Context) ([]wire.NotificationStatus, error) {
	var out []wire.NotificationStatus
	err := c.Do(ctx, http.MethodGet, "/v1/notifications", nil, &out)
	return out, err
}

// Notification returns a target with its last deliveries, newest first;
// an unknown name is an *APIError of code not_found.
func (c *Client) Notification(ctx context.Context, name string) (wire.NotificationStatus, error) {
	var out wire.NotificationStatus
	err := c.Do(ctx, http.MethodGet, Path("v1", "notifications", name), nil, &out)
	return out, err
}

// DeleteNotification removes a target; an unknown name is an *APIError
// of code not_found.
func (c *Client) DeleteNotification(ctx context.Context, name, reason string) error {
	path := Path("v1", "notifications", name)
	if reason != "" {
		path += "?reason=" + url.QueryEscape(reason)
	}
	return c.Do(ctx, http.MethodDelete, path, nil, nil)
}

// TestNotification sends a test notice to a target and returns its id,
// which its delivery carries (Notification shows how it went).
func (c *Client) TestNotification(ctx context.Context, name, reason string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	body := struct {
		Reason string `json:"reason,omitempty"`
	}{reason}
	err := c.Do(ctx, http.MethodPost, Path("v1", "notifications", name, "test"), body, &out)
	return out.ID, err
}
