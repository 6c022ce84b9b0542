package psa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// keyEndpoint is a TLS server whose handler the test chooses, counting the
// requests it gets per path.
type keyEndpoint struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newKeyEndpoint(t *testing.T, tls bool, h http.HandlerFunc) *keyEndpoint {
	t.Helper()
	ke := &keyEndpoint{hits: map[string]int{}}
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ke.mu.Lock()
		ke.hits[r.URL.Path]++
		ke.mu.Unlock()
		h(w, r)
	})
	if tls {
		ke.Server = httptest.NewTLSServer(wrapped)
	} else {
		ke.Server = httptest.NewServer(wrapped)
	}
	t.Cleanup(ke.Close)
	return ke
}

func (ke *keyEndpoint) hitsOn(path string) int {
	ke.mu.Lock()
	defer ke.mu.Unlock()
	return ke.hits[path]
}

func serveKey(key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"signing_key":%q,"expires":"2027-01-01T00:00:00Z"}`, key)
	}
}

func TestKeyCacheFetchesAndCaches(t *testing.T) {
	srv := newKeyEndpoint(t, true, serveKey("k1"))
	now := testNow
	c := NewKeyCache([]string{"127.0.0.1"}, srv.Client(), time.Minute)
	c.Now = func() time.Time { return now }

	for i := range 3 {
		key, err := c.SigningKey(context.Background(), srv.URL+"/key")
		if err != nil || key != "k1" {
			t.Fatalf("SigningKey %d = %q, %v; want k1", i, key, err)
		}
	}
	if n := srv.hitsOn("/key"); n != 1 {
		t.Errorf("server hit %d times for three calls, want 1", n)
	}

	// Another URL is another key.
	if _, err := c.SigningKey(context.Background(), srv.URL+"/key?id=2"); err != nil {
		t.Fatal(err)
	}
	if n := srv.hitsOn("/key"); n != 2 {
		t.Errorf("server hit %d times after a second URL, want 2", n)
	}

	// After the TTL the key is fetched again.
	now = now.Add(time.Minute)
	if _, err := c.SigningKey(context.Background(), srv.URL+"/key"); err != nil {
		t.Fatal(err)
	}
	if n := srv.hitsOn("/key"); n != 3 {
		t.Errorf("server hit %d times after the TTL, want 3", n)
	}
}

func TestKeyCacheFetchesOnceForConcurrentCallers(t *testing.T) {
	release := make(chan struct{})
	srv := newKeyEndpoint(t, true, func(w http.ResponseWriter, r *http.Request) {
		<-release
		serveKey("k1")(w, r)
	})
	c := NewKeyCache([]string{"127.0.0.1"}, srv.Client(), 0)

	const callers = 8
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range callers {
		wg.Go(func() {
			if key, err := c.SigningKey(context.Background(), srv.URL+"/key"); err != nil || key != "k1" {
				failures.Add(1)
			}
		})
	}
	// Let the callers queue up behind the first fetch, then answer it.
	deadline := time.Now().Add(5 * time.Second)
	for srv.hitsOn("/key") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d callers failed", n)
	}
	if n := srv.hitsOn("/key"); n != 1 {
		t.Errorf("server hit %d times for %d concurrent callers, want 1", n, callers)
	}
}

func TestKeyCacheRefuses(t *testing.T) {
	big := strings.Repeat("x", maxKeyResponse)
	release := make(chan struct{})
	srv := newKeyEndpoint(t, true, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/key":
			serveKey("k1")(w, r)
		case "/redirect":
			http.Redirect(w, r, "/key", http.StatusFound)
		case "/permanent-redirect":
			http.Redirect(w, r, "/key", http.StatusPermanentRedirect)
		case "/oversize":
			fmt.Fprintf(w, `{"signing_key":"k1","pad":%q}`, big)
		case "/oversize-chunked":
			// No Content-Length: the cap must hold while reading.
			w.Write([]byte(`{"signing_key":"k1","pad":"`))
			w.(http.Flusher).Flush()
			for range 80 {
				w.Write([]byte(strings.Repeat("y", 1024)))
				w.(http.Flusher).Flush()
			}
			w.Write([]byte(`"}`))
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/not-json":
			w.Write([]byte(`signing_key=k1`))
		case "/no-key":
			w.Write([]byte(`{"key":"k1"}`))
		case "/forbidden":
			w.WriteHeader(http.StatusForbidden)
		case "/busy":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/broken":
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	plain := newKeyEndpoint(t, false, serveKey("k1"))

	// A generous timeout for the answers that come at once (the machines
	// running tests are shared and slow under -race), a short one for the
	// endpoint that never answers.
	c := NewKeyCache([]string{"127.0.0.1"}, srv.Client(), 0)
	c.Timeout = 10 * time.Second
	impatient := NewKeyCache([]string{"127.0.0.1"}, srv.Client(), 0)
	impatient.Timeout = 100 * time.Millisecond

	tests := []struct {
		name   string
		url    string
		status int
		code   string
		hits   string // the path that must not have been requested, if any
	}{
		{"host not allowed", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/key", 401, domain.CodeKeyRefused, ""},
		{"other host", "https://attacker.example/key", 401, domain.CodeKeyRefused, ""},
		{"http", plain.URL + "/key", 401, domain.CodeKeyRefused, ""},
		{"no scheme", "127.0.0.1/key", 401, domain.CodeKeyRefused, ""},
		{"not a URL", "https://127.0.0.1:bad/key", 401, domain.CodeKeyRefused, ""},
		{"userinfo", strings.Replace(srv.URL, "https://", "https://user:pw@", 1) + "/key", 401, domain.CodeKeyRefused, ""},
		{"redirect", srv.URL + "/redirect", 401, domain.CodeKeyRefused, "/key"},
		{"permanent redirect", srv.URL + "/permanent-redirect", 401, domain.CodeKeyRefused, "/key"},
		{"oversize", srv.URL + "/oversize", 401, domain.CodeKeyRefused, ""},
		{"oversize chunked", srv.URL + "/oversize-chunked", 401, domain.CodeKeyRefused, ""},
		{"not JSON", srv.URL + "/not-json", 401, domain.CodeKeyRefused, ""},
		{"no signing_key", srv.URL + "/no-key", 401, domain.CodeKeyRefused, ""},
		{"403", srv.URL + "/forbidden", 401, domain.CodeKeyRefused, ""},
		{"429", srv.URL + "/busy", 429, domain.CodeKeyUnavailable, ""},
		{"502", srv.URL + "/broken", 429, domain.CodeKeyUnavailable, ""},
		{"slow", srv.URL + "/slow", 429, domain.CodeKeyUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := c
			if tt.name == "slow" {
				cache = impatient
			}
			key, err := cache.SigningKey(context.Background(), tt.url)
			if key != "" {
				t.Errorf("SigningKey returned a key with an error")
			}
			wantError(t, err, tt.status, tt.code, "k1")
			if tt.hits != "" && srv.hitsOn(tt.hits) != 0 {
				t.Errorf("%s was requested", tt.hits)
			}
		})
	}
	if n := plain.hitsOn("/key"); n != 0 {
		t.Errorf("the plain-http server was hit %d times", n)
	}

	t.Run("slow is a timeout", func(t *testing.T) {
		start := time.Now()
		_, err := impatient.SigningKey(context.Background(), srv.URL+"/slow")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want one wrapping context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v with a 100ms timeout", d)
		}
	})
	t.Run("failures are not cached", func(t *testing.T) {
		before := srv.hitsOn("/broken")
		c.SigningKey(context.Background(), srv.URL+"/broken")
		if srv.hitsOn("/broken") != before+1 {
			t.Error("a failed fetch was cached")
		}
	})
	t.Run("the caller's client still follows redirects", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/redirect")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d: NewKeyCache changed the client it was given", resp.StatusCode)
		}
	})
}

func TestKeyCacheAllowInsecure(t *testing.T) {
	plain := newKeyEndpoint(t, false, serveKey("k1"))
	c := NewKeyCache([]string{"127.0.0.1"}, plain.Client(), 0)
	c.AllowInsecure = []string{"127.0.0.1"}
	if key, err := c.SigningKey(context.Background(), plain.URL+"/key"); err != nil || key != "k1" {
		t.Fatalf("SigningKey = %q, %v; want k1", key, err)
	}

	// AllowInsecure relaxes the scheme only, never the host allow-list.
	c = NewKeyCache([]string{"example.com"}, plain.Client(), 0)
	c.AllowInsecure = []string{"127.0.0.1"}
	_, err := c.SigningKey(context.Background(), plain.URL+"/key")
	wantError(t, err, 401, domain.CodeKeyRefused)
}

func TestKeyCacheHostMatching(t *testing.T) {
	srv := newKeyEndpoint(t, true, serveKey("k1"))
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	tests := []struct {
		allowed []string
		ok      bool
	}{
		{[]string{"127.0.0.1"}, true},
		{[]string{"127.0.0.1:" + port}, true},
		{[]string{"127.0.0.1:1"}, false},
		{[]string{"127.0.0.2", " 127.0.0.1 "}, true},
		{[]string{"127.0.0"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		c := NewKeyCache(tt.allowed, srv.Client(), 0)
		_, err := c.SigningKey(context.Background(), srv.URL+"/key")
		if (err == nil) != tt.ok {
			t.Errorf("allowed %q: err = %v, want ok=%v", tt.allowed, err, tt.ok)
		}
	}
}

func TestKeyCacheCancelledWaiter(t *testing.T) {
	release := make(chan struct{})
	srv := newKeyEndpoint(t, true, func(w http.ResponseWriter, r *http.Request) {
		<-release
		serveKey("k1")(w, r)
	})
	c := NewKeyCache([]string{"127.0.0.1"}, srv.Client(), 0)
	var wg sync.WaitGroup
	wg.Go(func() { c.SigningKey(context.Background(), srv.URL+"/key") })
	for srv.hitsOn("/key") == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.SigningKey(ctx, srv.URL+"/key")
	wantError(t, err, 429, domain.CodeKeyUnavailable)
	close(release)
	wg.Wait()
}

func TestKeyCacheBounded(t *testing.T) {
	srv := newKeyEndpoint(t, true, serveKey("k1"))
	c := NewKeyCache([]string{"127.0.0.1"}, srv.Client(), 0)
	for i := range maxCachedKeys + 10 {
		c.mu.Lock()
		c.store(fmt.Sprintf("%s/key?%d", srv.URL, i), "k")
		c.mu.Unlock()
	}
	if n := len(c.keys); n > maxCachedKeys {
		t.Errorf("cache holds %d keys, more than %d", n, maxCachedKeys)
	}
}
