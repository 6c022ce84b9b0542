package psa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

const (
	// maxKeyResponse caps a key endpoint's answer.
	maxKeyResponse = 64 << 10
	// defaultKeyTimeout bounds one key fetch: well under the 5 s that
	// ConnectWise waits for the whole callback to be answered.
	defaultKeyTimeout = 2 * time.Second
	defaultKeyTTL     = 10 * time.Minute
	// maxCachedKeys bounds the cache: key URLs come from unverified bodies,
	// so a sender could otherwise grow it with endless distinct URLs on an
	// allowed host.
	maxCachedKeys = 1024
)

// KeyCache fetches ConnectWise signing keys from a callback's
// Metadata.key_url and caches them by URL. It fetches only https URLs whose
// host is in its allow-list, follows no redirect, gives each fetch a
// timeout, reads at most 64 KiB, and lets one fetch per URL run at a time
// (concurrent callers for that URL wait for its result). Failures are not
// cached.
//
// The key endpoint must answer 200 with a JSON object whose "signing_key"
// is the key as a string, e.g. {"signing_key": "…"}; other fields are
// ignored. The HMAC key is then the SHA-256 of that string's bytes.
//
// The exported fields are options: set them before the first use, never
// after. A KeyCache is safe for concurrent use.
type KeyCache struct {
	// AllowInsecure lists hosts, among the allowed ones, whose key URLs may
	// also be plain http. It exists for tests against httptest.NewServer
	// (e.g. "127.0.0.1"); leave it empty in production.
	AllowInsecure []string
	// Timeout bounds one key fetch; 0 means 2 seconds.
	Timeout time.Duration
	// Now is the clock for the cache's TTL; nil means time.Now.
	Now func() time.Time

	allowed []string
	client  *http.Client
	ttl     time.Duration

	mu       sync.Mutex
	keys     map[string]cachedKey
	inflight map[string]*keyFetch
}

type cachedKey struct {
	key     string
	expires time.Time
}

// keyFetch is one fetch in progress; done is closed when key and err are
// set.
type keyFetch struct {
	done chan struct{}
	key  string
	err  error
}

// NewKeyCache returns a KeyCache that fetches from allowedHosts only. A
// host is matched case-insensitively against the URL's host name, on any
// port, unless it is given as "host:port". client does the fetches (nil
// means a new http.Client); the cache uses a copy of it that follows no
// redirect, so the caller's client is left as it is. Keys are kept for ttl
// (0 or less means 10 minutes).
func NewKeyCache(allowedHosts []string, client *http.Client, ttl time.Duration) *KeyCache {
	var c http.Client
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if ttl <= 0 {
		ttl = defaultKeyTTL
	}
	allowed := make([]string, 0, len(allowedHosts))
	for _, h := range allowedHosts {
		if h = strings.TrimSpace(h); h != "" {
			allowed = append(allowed, strings.ToLower(h))
		}
	}
	return &KeyCache{
		allowed:  allowed,
		client:   &c,
		ttl:      ttl,
		keys:     map[string]cachedKey{},
		inflight: map[string]*keyFetch{},
	}
}

// SigningKey returns the signing key published at keyURL, from the cache
// when it holds one younger than the TTL. Its errors are *domain.Errors: 401
// domain.CodeKeyRefused when keyURL is not allowed or the endpoint's answer cannot
// be a key (a redirect, a 4xx, more than 64 KiB, no signing_key), 429
// domain.CodeKeyUnavailable when the fetch failed in a way that may pass (network
// error, timeout, 429 or 5xx, ctx done).
func (c *KeyCache) SigningKey(ctx context.Context, keyURL string) (string, error) {
	u, e := c.checkURL(keyURL)
	if e != nil {
		return "", e
	}
	c.mu.Lock()
	if k, ok := c.keys[keyURL]; ok && c.now().Before(k.expires) {
		c.mu.Unlock()
		return k.key, nil
	}
	if f, ok := c.inflight[keyURL]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.key, f.err
		case <-ctx.Done():
			return "", keyUnavailable("waiting for the signing key was cancelled", ctx.Err())
		}
	}
	f := &keyFetch{done: make(chan struct{})}
	c.inflight[keyURL] = f
	c.mu.Unlock()

	f.key, f.err = c.fetch(ctx, u)

	c.mu.Lock()
	delete(c.inflight, keyURL)
	if f.err == nil {
		c.store(keyURL, f.key)
	}
	c.mu.Unlock()
	close(f.done)
	return f.key, f.err
}

// store caches key under keyURL; c.mu must be held.
func (c *KeyCache) store(keyURL, key string) {
	now := c.now()
	if len(c.keys) >= maxCachedKeys {
		for u, k := range c.keys {
			if !now.Before(k.expires) {
				delete(c.keys, u)
			}
		}
	}
	if len(c.keys) >= maxCachedKeys {
		for u := range c.keys { // evict one at random
			delete(c.keys, u)
			break
		}
	}
	c.keys[keyURL] = cachedKey{key: key, expires: now.Add(c.ttl)}
}

func (c *KeyCache) checkURL(keyURL string) (*url.URL, *domain.Error) {
	u, err := url.Parse(keyURL)
	if err != nil || u.Host == "" || u.User != nil {
		return nil, unauthorized(domain.CodeKeyRefused, "Metadata.key_url is not a usable URL")
	}
	if !hostIn(u, c.allowed) {
		return nil, unauthorized(domain.CodeKeyRefused, "Metadata.key_url is not on a host allowed to publish signing keys")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && hostIn(u, lower(c.AllowInsecure)):
	default:
		return nil, unauthorized(domain.CodeKeyRefused, "Metadata.key_url is not https")
	}
	return u, nil
}

// hostIn reports whether u's host is one of hosts: a "host:port" entry
// must match the URL's host and port, a bare host its host name.
func hostIn(u *url.URL, hosts []string) bool {
	name, hostport := strings.ToLower(u.Hostname()), strings.ToLower(u.Host)
	for _, h := range hosts {
		if _, _, err := net.SplitHostPort(h); err == nil {
			if h == hostport {
				return true
			}
		} else if strings.Trim(h, "[]") == name {
			return true
		}
	}
	return false
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}

func (c *KeyCache) fetch(ctx context.Context, u *url.URL) (string, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultKeyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", unauthorized(domain.CodeKeyRefused, "Metadata.key_url is not a usable URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", keyUnavailable("the signing key endpoint did not answer in time", err)
		}
		return "", keyUnavailable("the signing key endpoint could not be reached", err)
	}
	defer resp.Body.Close()
	if err := ctx.Err(); err != nil {
		// The transport may hand back a response that raced the deadline
		// (a server answering as the connection closes): it is still late.
		return "", keyUnavailable("the signing key endpoint did not answer in time", err)
	}
	switch s := resp.StatusCode; {
	case s >= 300 && s < 400:
		return "", unauthorized(domain.CodeKeyRefused, "the signing key endpoint redirected; redirects are not followed")
	case s == http.StatusTooManyRequests || s >= 500:
		return "", keyUnavailable(fmt.Sprintf("the signing key endpoint answered %d", s), nil)
	case s != http.StatusOK:
		return "", unauthorized(domain.CodeKeyRefused, "the signing key endpoint answered %d", s)
	}
	if resp.ContentLength > maxKeyResponse {
		return "", unauthorized(domain.CodeKeyRefused, "the signing key endpoint's answer is larger than 64 KiB")
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyResponse+1))
	if err != nil {
		return "", keyUnavailable("the signing key endpoint's answer could not be read", err)
	}
	if len(data) > maxKeyResponse {
		return "", unauthorized(domain.CodeKeyRefused, "the signing key endpoint's answer is larger than 64 KiB")
	}
	var k struct {
		SigningKey string `json:"signing_key"`
	}
	if json.Unmarshal(data, &k) != nil || k.SigningKey == "" {
		return "", unauthorized(domain.CodeKeyRefused, `the signing key endpoint's answer has no "signing_key"`)
	}
	return k.SigningKey, nil
}

func (c *KeyCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func keyUnavailable(msg string, cause error) *domain.Error {
	return &domain.Error{Code: domain.CodeKeyUnavailable, Message: msg, RetryAfter: keyRetryAfter, Err: cause}
}

// asError returns err as a *domain.Error; anything else (which SigningKey never
// returns) is a key that could not be had, and may be had on a retry.
func asError(err error) *domain.Error {
	var e *domain.Error
	if errors.As(err, &e) {
		return e
	}
	return keyUnavailable("the signing key could not be fetched", err)
}
