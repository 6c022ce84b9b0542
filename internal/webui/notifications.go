package webui

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Notifications is what the notifications page asks of the deliverer
// (notify.Notifier, given by serve): the targets as wire.TargetOf shows
// them, with their deliveries. The page renders its answers and never
// judges a delivery.
type Notifications interface {
	// Statuses returns every target with its totals, by name.
	Statuses() []wire.NotificationStatus
	// Status returns a target with its last deliveries, newest first;
	// not_found for an unknown target.
	Status(name string) (wire.NotificationStatus, error)
}

// deliveriesShown is how many of a target's last deliveries the page
// shows; the API and the CLI show every one kept.
const deliveriesShown = 10

type notificationsPage struct {
	base
	// Enabled is false when no deliverer runs in this process: the
	// targets are listed without deliveries.
	Enabled bool
	Targets []notificationTarget
}

type notificationTarget struct {
	wire.NotificationStatus
	// More counts the deliveries kept beyond those shown.
	More int
}

// notifications serves GET /notifications, for admins, as the API does.
func (u *UI) notifications(w http.ResponseWriter, r *http.Request, s session) error {
	if !s.role.Allows(domain.RoleAdmin) {
		return domain.Errorf(domain.CodePermissionDenied, "notification targets are for admins; you are signed in as %s", s.role)
	}
	data := notificationsPage{Enabled: u.opts.Notifications != nil}
	data.base = u.base(w, r, &s, "notifications", "notifications")
	if data.Enabled {
		for _, st := range u.opts.Notifications.Statuses() {
			one, err := u.opts.Notifications.Status(st.Name)
			if err != nil {
				continue // deleted meanwhile
			}
			t := notificationTarget{NotificationStatus: one}
			if len(t.Deliveries) > deliveriesShown {
				t.More, t.Deliveries = len(t.Deliveries)-deliveriesShown, t.Deliveries[:deliveriesShown]
			}
			data.Targets = append(data.Targets, t)
		}
	} else {
		for _, n := range u.svc.State().NotifierList() {
			data.Targets = append(data.Targets, notificationTarget{NotificationStatus: wire.NotificationStatus{NotificationTarget: wire.TargetOf(n)}})
		}
	}
	u.render(w, r, http.StatusOK, "notifications", &data)
	return nil
}

// notificationsKey is what the notifications page follows: it changes with
// any target or any delivery's state.
func (u *UI) notificationsKey() string {
	h := sha256.New()
	var b [8]byte
	if u.opts.Notifications == nil {
		for _, n := range u.svc.State().NotifierList() {
			h.Write([]byte(n.Name + "\x00"))
		}
		return hex.EncodeToString(h.Sum(nil)[:8])
	}
	for _, st := range u.opts.Notifications.Statuses() {
		h.Write([]byte(st.Name + "\x00"))
		binary.BigEndian.PutUint64(b[:], uint64(st.UpdatedAt.UnixNano()))
		h.Write(b[:])
		for _, v := range []uint64{st.Totals.Delivered, st.Totals.Failed, st.Totals.Dropped, st.Totals.Retries, uint64(st.Totals.Queued)} {
			binary.BigEndian.PutUint64(b[:], v)
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
