package webui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/notify"
	"github.com/switchbackhq/switchback/internal/webui"
	"github.com/switchbackhq/switchback/internal/wire"
)

// notifierFixture is the UI with a real notifier delivering to a real
// receiver at ok (200) and one at broken (400), for targets ops and chat.
func notifierFixture(t *testing.T) (*fixture, *notify.Notifier) {
	t.Helper()
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	t.Cleanup(broken.Close)
	var svc *control.Service
	n := notify.New(notify.Options{Targets: func() []domain.Notifier { return svc.State().NotifierList() }, Log: discard()})
	f := newFixture(t, fixtureOptions{ui: webui.Options{Notifications: n}})
	svc = f.svc
	f.svc.OnNotice(n.Send)
	run, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(run); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, in := range []control.NotifierInput{
		{Name: "ops", URL: ptr(ok.URL + "/hooks/pathcredential"), Events: []string{domain.NoticeRevert}, Secret: &secret},
		{Name: "chat", URL: ptr(broken.URL + "/services/slackcredential"), Events: []string{domain.NoticeRevert, domain.NoticeResume}, Format: domain.FormatSlack},
	} {
		if _, _, err := f.svc.PutNotifier(ctx, setup, in); err != nil {
			t.Fatal(err)
		}
	}
	return f, n
}

func ptr[T any](v T) *T { return &v }

// waitDelivery waits until the target's newest delivery is in state.
func waitDelivery(t *testing.T, n *notify.Notifier, target, state string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st, err := n.Status(target); err == nil && len(st.Deliveries) > 0 && st.Deliveries[0].State == state {
			return
		}
	}
	t.Fatalf("the delivery to %s never got %s", target, state)
}

// An admin sees each target (host, events, format) and its last
// deliveries with their states, as the notifier answers them, and never a
// secret or a URL's path; the page follows the deliveries live.
func TestNotificationsPage(t *testing.T) {
	f, n := notifierFixture(t)
	c := f.client(t)
	c.login("admin")
	keyOf := func() string {
		t.Helper()
		var st struct{ Keys map[string]string }
		if err := json.Unmarshal([]byte(c.get("/ui/state.json").body), &st); err != nil {
			t.Fatal(err)
		}
		return st.Keys["notifications"]
	}
	before := keyOf()
	if before == "" {
		t.Fatal("state.json has no notifications key")
	}
	if _, err := f.svc.Revert(ctx, control.Change{Actor: "alice", Reason: "errors"}, mig); err != nil {
		t.Fatal(err)
	}
	waitDelivery(t, n, "ops", wire.DeliveryDelivered)
	waitDelivery(t, n, "chat", wire.DeliveryFailed)
	if keyOf() == before {
		t.Error("the notifications key did not change with the deliveries")
	}

	page := c.get("/notifications")
	if page.status != http.StatusOK {
		t.Fatalf("GET /notifications as admin: %d\n%s", page.status, page.body)
	}
	for _, want := range []string{
		`href="/notifications" aria-current="page"`,
		`data-target="ops"`, `data-target="chat"`,
		"127.0.0.1", "<code>revert</code>", "<code>resume</code>", "<dd>slack</dd>", "<dd>standard <span",
		`data-state="delivered"`, `data-state="failed"`, "HTTP 400",
		"1 delivered", "1 failed",
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, leak := range []string{"pathcredential", "slackcredential", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"} {
		if strings.Contains(page.body, leak) {
			t.Errorf("the page holds %q", leak)
		}
	}
}

// Targets are for admins, as in the API: no link and 403 for the others.
func TestNotificationsPageIsForAdmins(t *testing.T) {
	f, _ := notifierFixture(t)
	for _, as := range []string{"viewer", "operator"} {
		c := f.client(t)
		c.login(as)
		if home := c.get("/"); strings.Contains(home.body, `href="/notifications"`) {
			t.Errorf("%s: the nav links to the notifications", as)
		}
		if res := c.get("/notifications"); res.status != http.StatusForbidden || strings.Contains(res.body, `data-target="ops"`) {
			t.Errorf("%s: GET /notifications = %d, want 403 without the targets", as, res.status)
		}
	}
	c := f.client(t)
	c.login("admin")
	if home := c.get("/"); !strings.Contains(home.body, `href="/notifications"`) {
		t.Error("admin: the nav does not link to the notifications")
	}
}

// Without a notifier the targets are listed as stored, and the page says
// nothing is delivered here.
func TestNotificationsPageWithoutNotifier(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if _, _, err := f.svc.PutNotifier(ctx, setup, control.NotifierInput{Name: "chat", URL: ptr("https://hooks.slack.com/services/T/B/X"), Events: []string{"revert"}, Format: "slack"}); err != nil {
		t.Fatal(err)
	}
	c := f.client(t)
	c.login("admin")
	page := c.get("/notifications")
	if page.status != http.StatusOK || !strings.Contains(page.body, `id="notifications-disabled"`) || !strings.Contains(page.body, `data-target="chat"`) {
		t.Errorf("page without a notifier: %d\n%s", page.status, page.body)
	}
}
