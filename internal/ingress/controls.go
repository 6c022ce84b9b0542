package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
)

// Controls are the base URLs of the control service's replicas (one store
// behind them all), as the router's reporter and replay follower use them:
// each request goes to the replica that last answered, and a failure moves
// them both on to the next, round robin. The flags provider follows its
// snapshot stream the same way, on its own. A Controls is safe for
// concurrent use.
type Controls struct {
	urls []string
	cur  atomic.Int32 // indexes urls: the replica that last answered
}

// NewControls returns the replicas at urls, starting with the first. It
// returns CheckControlURLs's error.
func NewControls(urls []string) (*Controls, error) {
	if err := CheckControlURLs(urls); err != nil {
		return nil, err
	}
	return &Controls{urls: slices.Clone(urls)}, nil
}

// ParseControlURLs splits a comma-separated list of control URLs, as
// --control and $SWITCHBACK_SERVER give it, trimming the spaces around
// each. It keeps empty items, for CheckControlURLs to name.
func ParseControlURLs(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	urls := strings.Split(s, ",")
	for i, u := range urls {
		urls[i] = strings.TrimSpace(u)
	}
	return urls
}

// CheckControlURLs returns an error that names the first bad URL of urls:
// none at all, one empty, one that is not an http or https URL with a
// host, or one given twice.
func CheckControlURLs(urls []string) error {
	if len(urls) == 0 {
		return errors.New("the control service's URL must be given")
	}
	for i, raw := range urls {
		if raw == "" {
			return fmt.Errorf("control URL %d of %d is empty", i+1, len(urls))
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("control URL %q must be an http or https URL", raw)
		}
		if slices.Contains(urls[:i], raw) {
			return fmt.Errorf("control URL %q is given twice", raw)
		}
	}
	return nil
}

// URLs returns the replicas' base URLs, in their order.
func (c *Controls) URLs() []string { return slices.Clone(c.urls) }

// do calls try with the replica that last answered and, while try fails,
// with each other replica in turn, each at most once; it returns try's
// last error. A refusedError does not move on: it refuses the request
// itself, and every replica of the store would refuse it too.
func (c *Controls) do(ctx context.Context, log *slog.Logger, try func(base string) error) error {
	var err error
	for range len(c.urls) {
		i := c.cur.Load()
		base := c.urls[i]
		var refused *refusedError
		if err = try(base); err == nil || ctx.Err() != nil || errors.As(err, &refused) {
			return err
		}
		if len(c.urls) == 1 {
			break
		}
		next := (i + 1) % int32(len(c.urls))
		// Whoever saw the failure first moves the loops on: a request of
		// the other loop failing on the same replica moves nothing more.
		if c.cur.CompareAndSwap(i, next) {
			log.Warn("a control service replica failed; moving to the next", "url", base, "next", c.urls[next], "err", err)
		}
	}
	return err
}
