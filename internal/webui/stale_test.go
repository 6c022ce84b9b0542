package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/etcdstore/etcdtest"
)

// etcdFixture is the fixture on a real etcd store, on a one-member etcd
// in this process, with the service following it as a replica does.
type etcdFixture struct {
	*fixture
	etcd *etcdMember
}

// etcdMember is one embedded etcd member that the test stops and starts
// again on the same address and data.
type etcdMember struct {
	t   testing.TB
	mu  sync.Mutex
	e   *embed.Etcd // nil while stopped
	cfg embed.Config
}

func (m *etcdMember) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
}

// start brings the member back on its address, with its data.
func (m *etcdMember) start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg := m.cfg
	e, err := embed.StartEtcd(&cfg)
	if err != nil {
		m.t.Fatalf("restart etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		m.t.Fatalf("restart etcd: %v", err)
	case <-time.After(30 * time.Second):
		e.Close()
		m.t.Fatal("restart etcd: not ready in 30s")
	}
	m.e = e
}

func newEtcdFixture(t *testing.T, fo fixtureOptions) *etcdFixture {
	t.Helper()
	e, err := etcdtest.StartOne(t.TempDir())
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	m := &etcdMember{t: t, e: e, cfg: e.Config()}
	t.Cleanup(m.stop)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Clients[0].Addr().String()},
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	store, err := etcdstore.Open(t.Context(), cli, "/webui-test/")
	if err != nil {
		t.Fatalf("etcdstore.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	fo.store = store
	f := &etcdFixture{fixture: newFixture(t, fo), etcd: m}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.svc.Follow(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

// waitStale waits until the service reports its store unreachable, or
// reachable again.
func waitStale(t testing.TB, svc *control.Service, want bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, stale := svc.Stale(); stale == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stale() never became %v in 20s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// anonymous GETs u without a session. (A second client of the fixture
// would share the first one's http.Client, and so its cookie jar.)
func anonymous(t testing.TB, u string) response {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

const staleBanner = `id="stale-banner"`

// bannerShown reports whether a page shows the stale banner.
func bannerShown(body string) bool {
	i := strings.Index(body, staleBanner)
	if i < 0 {
		return false
	}
	tag, _, _ := strings.Cut(body[i:], ">")
	return !strings.Contains(tag, " hidden")
}

// A replica that loses etcd keeps showing the last state it had, says so
// on every page and in the Switchback-Stale-Since header, and refuses the
// UI's changes with the service's message; when etcd is back, the banner
// goes.
func TestStaleReplica(t *testing.T) {
	f := newEtcdFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("operator")

	// The pages that read only the published state. (A migration's and a
	// partner's pages also read comparison counts from the store, each
	// read bounded by the store's timeout: too slow for this test.)
	pages := []string{"/", "/routers", "/replays"}
	for _, p := range append(pages, "/audit") {
		res := c.get(p)
		if res.status != http.StatusOK || bannerShown(res.body) || res.header.Get("Switchback-Stale-Since") != "" {
			t.Errorf("GET %s with etcd up: %d, banner shown %v, Switchback-Stale-Since %q; want 200, no banner, no header",
				p, res.status, bannerShown(res.body), res.header.Get("Switchback-Stale-Since"))
		}
	}
	version := f.svc.State().Version

	f.etcd.stop()
	waitStale(t, f.svc, true)
	// The fixture's clock stands still, so "since" is known.
	const sinceHeader, sinceText = "2026-03-01T12:00:00Z", "2026-03-01 12:00:00 UTC"
	banner := "cannot reach the control store (etcd) since <time datetime=\"" + sinceHeader + "\">" + sinceText + "</time>"

	t.Run("every page shows the banner", func(t *testing.T) {
		for _, p := range pages {
			res := c.get(p)
			if got := res.header.Get("Switchback-Stale-Since"); got != sinceHeader {
				t.Errorf("GET %s: Switchback-Stale-Since %q, want %q", p, got, sinceHeader)
			}
			if res.status != http.StatusOK || !bannerShown(res.body) || !strings.Contains(res.body, banner) {
				t.Errorf("GET %s: %d, want 200 with the stale banner since %s in\n%s", p, res.status, sinceText, res.body)
			}
		}
		// The sign-in page too, before any session.
		res := anonymous(t, f.srv.URL+"/login")
		if !bannerShown(res.body) || res.header.Get("Switchback-Stale-Since") != sinceHeader {
			t.Errorf("GET /login: banner shown %v, header %q; want the banner and %q", bannerShown(res.body), res.header.Get("Switchback-Stale-Since"), sinceHeader)
		}
	})

	t.Run("the audit log, read from the store, is unavailable", func(t *testing.T) {
		res := c.get("/audit")
		if res.status != http.StatusServiceUnavailable || !bannerShown(res.body) || !strings.Contains(res.body, "cannot be reached") {
			t.Errorf("GET /audit: %d, want 503 saying the store cannot be reached, under the banner:\n%s", res.status, res.body)
		}
	})

	t.Run("the last state is still shown", func(t *testing.T) {
		res := c.get("/")
		if res.status != http.StatusOK || !strings.Contains(res.body, fmt.Sprintf("snapshot version %d", version)) || !strings.Contains(res.body, mig) {
			t.Errorf("GET /: %d, want 200 with %s at snapshot version %d", res.status, mig, version)
		}
	})

	t.Run("state.json says stale", func(t *testing.T) {
		res := c.get("/ui/state.json")
		var got struct {
			Stale      bool      `json:"stale"`
			StaleSince time.Time `json:"staleSince"`
		}
		if err := json.Unmarshal([]byte(res.body), &got); err != nil || res.status != http.StatusOK {
			t.Fatalf("GET /ui/state.json: %d %v", res.status, err)
		}
		if want := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC); !got.Stale || !got.StaleSince.Equal(want) {
			t.Errorf("GET /ui/state.json: stale %v since %v, want true since %v", got.Stale, got.StaleSince, want)
		}
	})

	t.Run("changes are refused with the service's message", func(t *testing.T) {
		csrf := c.csrf("/")
		for _, tt := range []struct{ name, path, next string }{
			{"revert all", "/revert", "/"},
			{"revert one", "/migrations/" + mig + "/revert", "/migrations/" + mig},
			{"advance", "/migrations/" + mig + "/cohorts/canary/advance", "/migrations/" + mig + "#cohort-canary"},
		} {
			res := c.post(tt.path, url.Values{"csrf": {csrf}, "reason": {"etcd is down"}}, nil)
			if res.status != http.StatusSeeOther || res.header.Get("Location") != tt.next {
				t.Errorf("%s: POST %s = %d to %q, want 303 to %s", tt.name, tt.path, res.status, res.header.Get("Location"), tt.next)
				continue
			}
			if res.header.Get("Switchback-Stale-Since") != sinceHeader {
				t.Errorf("%s: POST %s without Switchback-Stale-Since", tt.name, tt.path)
			}
			// The message waits in the session for the next page shown,
			// whichever it is.
			page := c.get("/")
			if want := "<strong>Refused:</strong> the control store cannot be reached since " + sinceHeader + ": this replica makes no change"; !strings.Contains(page.body, want) {
				t.Errorf("%s: the next page does not say %q:\n%s", tt.name, want, page.body)
			}
		}
		if f.reverted(t) || f.svc.State().Version != version {
			t.Errorf("a change went through while stale: reverted %v, version %d (was %d)", f.reverted(t), f.svc.State().Version, version)
		}
	})

	f.etcd.start()
	waitStale(t, f.svc, false)
	res := c.get("/")
	if bannerShown(res.body) || res.header.Get("Switchback-Stale-Since") != "" {
		t.Errorf("GET / with etcd back: banner shown %v, header %q; want neither", bannerShown(res.body), res.header.Get("Switchback-Stale-Since"))
	}
	if res := c.post("/revert", url.Values{"csrf": {c.csrf("/")}, "reason": {"etcd is back"}}, nil); res.status != http.StatusSeeOther || !f.reverted(t) {
		t.Errorf("POST /revert with etcd back: %d, reverted %v; want 303 and reverted", res.status, f.reverted(t))
	}
}

// An open dashboard shows the stale banner when its replica loses etcd,
// without a reload, shows the refusal of a revert, and hides the banner
// when etcd is back.
func TestBrowserStaleBanner(t *testing.T) {
	b := newBrowser(t) // first: it skips when there is no browser
	f := newEtcdFixture(t, fixtureOptions{})
	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["operator"]))
	b.waitFor("the dashboard", `location.pathname === "/" && document.querySelector("#revert-all-button")`)
	b.waitFor("no banner", `document.querySelector("#stale-banner").hidden`)
	b.do(chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))

	f.etcd.stop()
	b.waitFor("the stale banner, without a reload", `!document.querySelector("#stale-banner").hidden`+
		` && document.querySelector("#stale-banner").innerText.includes("cannot reach the control store (etcd) since 2026-03-01 12:00:00 UTC")`+
		` && document.querySelector("#live-status").classList.contains("stale")`+
		` && window.__sameDocument === true`)

	b.do(chromedp.Click(chromedp.ID("revert-all-button")))
	b.waitFor("the revert dialog", `document.querySelector("#revert-all-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.ID("revert-all-reason"), "etcd is down"),
		chromedp.Click(chromedp.ID("revert-all-confirm")))
	b.waitFor("the refusal", `document.querySelector(".flash-error") && document.querySelector(".flash-error").innerText.includes("the control store cannot be reached")`+
		` && !document.querySelector("#stale-banner").hidden`)
	if f.reverted(t) {
		t.Error("the revert went through while stale")
	}

	f.etcd.start()
	b.waitFor("the banner gone", `document.querySelector("#stale-banner").hidden && !document.querySelector("#live-status").classList.contains("stale")`)
}
