package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/wire"
)

const (
	notifySecret  = "whsec_bm90aWZ5LXNlY3JldC1ieXRlcy1mb3ItdGVzdHMh"
	notifySecret2 = "whsec_c2Vjb25kLW5vdGlmeS1zZWNyZXQtYnl0ZXMtZm9yIQ=="
	// notifyURL's path stands for a credential (a Slack webhook's).
	notifyURL = "https://hooks.example.com/services/pathcredential"
)

// fakeNotifications is a hand-written httpapi.Notifications: what the
// targets' statuses are, built from the control state like notify does,
// with the deliveries given; SendTo records what it was given.
type fakeNotifications struct {
	svc        *control.Service
	deliveries []wire.Delivery

	mu   sync.Mutex
	sent []domain.Notice
}

func (f *fakeNotifications) Status(name string) (wire.NotificationStatus, error) {
	n, err := f.svc.State().Notifier(name)
	if err != nil {
		return wire.NotificationStatus{}, err
	}
	return wire.NotificationStatus{NotificationTarget: wire.TargetOf(*n), Deliveries: f.deliveries, Totals: wire.DeliveryTotals{Delivered: 1}}, nil
}

func (f *fakeNotifications) Statuses() []wire.NotificationStatus {
	var out []wire.NotificationStatus
	for _, n := range f.svc.State().NotifierList() {
		out = append(out, wire.NotificationStatus{NotificationTarget: wire.TargetOf(n), Totals: wire.DeliveryTotals{Delivered: 1}})
	}
	return out
}

func (f *fakeNotifications) SendTo(name string, n domain.Notice) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, n)
	return nil
}

func newNotifyFixture(t *testing.T) (*fixture, *fakeNotifications) {
	t.Helper()
	svc, _, tok := newService(t)
	fake := &fakeNotifications{svc: svc, deliveries: []wire.Delivery{{Notice: "ntc_1", Event: "revert", At: fixedNow, State: wire.DeliveryDelivered, Attempts: 1, Status: 200}}}
	srv := httptest.NewServer(httpapi.New(svc, discardLogger(), prometheus.NewRegistry(), httpapi.WithNotifications(fake)))
	t.Cleanup(srv.Close)
	return &fixture{svc: svc, srv: srv, tok: tok}, fake
}

// Every notifications endpoint needs the admin role: viewers and
// operators get 403, routers too, and no token 401.
func TestNotificationRoles(t *testing.T) {
	f, _ := newNotifyFixture(t)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/notifications/ops",
		obj{"url": notifyURL, "events": []string{"revert"}, "secret": notifySecret}, nil)
	endpoints := []struct {
		name, method, path string
		body               any
	}{
		{"put", http.MethodPut, "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"revert", "resume"}, "secret": notifySecret}},
		{"list", http.MethodGet, "/v1/notifications", nil},
		{"get", http.MethodGet, "/v1/notifications/ops", nil},
		{"test", http.MethodPost, "/v1/notifications/ops/test", obj{"reason": "table"}},
		{"delete", http.MethodDelete, "/v1/notifications/nobody", nil},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			for _, as := range []string{"", "viewer", "operator", "router"} {
				res := f.call(t, as, ep.method, ep.path, ep.body)
				if as == "" {
					checkError(t, res, http.StatusUnauthorized, "unauthenticated")
					continue
				}
				checkError(t, res, http.StatusForbidden, "permission_denied")
			}
			if res := f.call(t, "admin", ep.method, ep.path, ep.body); res.status == http.StatusForbidden || res.status == http.StatusUnauthorized || res.status >= 500 {
				t.Errorf("as admin: got %s, want to be let through", res)
			}
		})
	}
}

// A target is created (201) and replaced (200, its secret and url kept
// when left out), listed, shown with its deliveries, tested (202 with the
// notice's id) and deleted (204); no answer and no audit entry ever holds
// its secret or its URL's path.
func TestNotificationLifecycle(t *testing.T) {
	f, fake := newNotifyFixture(t)
	var answers strings.Builder
	keep := func(res response) response { answers.Write(res.body); return res }

	var created wire.NotificationTarget
	keep(f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/notifications/ops",
		obj{"url": notifyURL, "events": []string{"guard.revert", "revert"}, "secret": notifySecret, "reason": "on-call"}, &created))
	if created.Format != "standard" || !created.HasSecret || created.URL != "https://hooks.example.com/…" || created.Host != "hooks.example.com" {
		t.Errorf("created = %+v", created)
	}
	var replaced wire.NotificationTarget
	keep(f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/notifications/ops", obj{"events": []string{"router.stale"}}, &replaced))
	if !replaced.HasSecret || len(replaced.Events) != 1 {
		t.Errorf("replaced = %+v, want the secret kept", replaced)
	}
	n, err := f.svc.State().Notifier("ops")
	if err != nil || n.Secret != notifySecret || n.URL != notifyURL {
		t.Fatalf("stored target = %+v, %v; want the secret and url kept", n, err)
	}
	keep(f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/notifications/ops",
		obj{"events": []string{"revert"}, "secret": notifySecret2, "reason": "rotated"}, nil))
	keep(f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/notifications/chat",
		obj{"url": "https://hooks.slack.com/services/T0/B0/slackcredential", "events": []string{"revert"}, "format": "slack"}, nil))

	var list []wire.NotificationStatus
	keep(f.must(t, http.StatusOK, "admin", http.MethodGet, "/v1/notifications", nil, &list))
	if len(list) != 2 || list[0].Name != "chat" || list[1].Name != "ops" || list[0].HasSecret || list[0].Deliveries != nil {
		t.Errorf("list = %+v", list)
	}
	var one wire.NotificationStatus
	keep(f.must(t, http.StatusOK, "admin", http.MethodGet, "/v1/notifications/ops", nil, &one))
	if one.Name != "ops" || len(one.Deliveries) != 1 || one.Deliveries[0].State != wire.DeliveryDelivered || one.Totals.Delivered != 1 {
		t.Errorf("one = %+v", one)
	}

	var test struct{ ID, Event string }
	keep(f.must(t, http.StatusAccepted, "admin", http.MethodPost, "/v1/notifications/ops/test", obj{"reason": "does it ring?"}, &test))
	if len(fake.sent) != 1 || fake.sent[0].ID != test.ID || test.ID == "" || fake.sent[0].Event != "test" {
		t.Errorf("test answered %+v, sent %+v", test, fake.sent)
	}
	checkError(t, keep(f.call(t, "admin", http.MethodPost, "/v1/notifications/nobody/test", nil)), http.StatusNotFound, "not_found")

	res := keep(f.call(t, "admin", http.MethodDelete, "/v1/notifications/chat?reason=gone", nil))
	if res.status != http.StatusNoContent {
		t.Errorf("delete: %s", res)
	}
	checkError(t, keep(f.call(t, "admin", http.MethodGet, "/v1/notifications/chat", nil)), http.StatusNotFound, "not_found")
	checkError(t, keep(f.call(t, "admin", http.MethodDelete, "/v1/notifications/chat", nil)), http.StatusNotFound, "not_found")

	audit := f.call(t, "viewer", http.MethodGet, "/v1/audit?limit=1000", nil)
	var actions []string
	for _, a := range []string{"notification.put", "notification.test", "notification.delete"} {
		actions = append(actions, a+"="+string(rune('0'+strings.Count(string(audit.body), `"action":"`+a+`"`))))
	}
	if got := strings.Join(actions, " "); got != "notification.put=4 notification.test=1 notification.delete=1" {
		t.Errorf("audit actions: %s", got)
	}
	for what, text := range map[string]string{"an answer": answers.String(), "the audit log": string(audit.body)} {
		for _, leak := range []string{"bm90aWZ5LXNl", "c2Vjb25kLW5v", "pathcredential", "slackcredential", "whsec_"} {
			if strings.Contains(text, leak) {
				t.Errorf("%s holds %q:\n%s", what, leak, text)
			}
		}
	}
}

// What PUT refuses, each error naming the field.
func TestNotificationBadInput(t *testing.T) {
	f, _ := newNotifyFixture(t)
	for _, tt := range []struct {
		name string
		path string
		body any
		want string
	}{
		{"no url", "/v1/notifications/ops", obj{"events": []string{"revert"}, "format": "slack"}, "url"},
		{"unknown event", "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"deploy"}, "format": "slack"}, "events"},
		{"no events", "/v1/notifications/ops", obj{"url": notifyURL, "secret": notifySecret}, "events"},
		{"secret of another form", "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"revert"}, "secret": "hunter2"}, "secret"},
		{"no secret for standard", "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"revert"}}, "secret"},
		{"unknown field", "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"revert"}, "format": "slack", "channel": "#ops"}, "channel"},
		{"bad name", "/v1/notifications/Ops%20Team", obj{"url": notifyURL, "events": []string{"revert"}, "format": "slack"}, "notification target id"},
		{"ftp", "/v1/notifications/ops", obj{"url": "ftp://example.com/x", "events": []string{"revert"}, "format": "slack"}, "url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := f.call(t, "admin", http.MethodPut, tt.path, tt.body)
			env := checkError(t, res, http.StatusBadRequest, "invalid_argument")
			if env.Error != nil && !strings.Contains(env.Error.Message, tt.want) {
				t.Errorf("message %q does not name %s", env.Error.Message, tt.want)
			}
			if strings.Contains(string(res.body), "hunter2") {
				t.Errorf("the answer quotes the secret: %s", res.body)
			}
		})
	}
}
