package httpapi

import (
	"net/http"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Notifications delivers notices to the notification targets and keeps
// their delivery status: notify.Notifier, given by serve. The API asks it
// what was delivered and never judges a delivery itself.
type Notifications interface {
	// Status returns a target with its last deliveries and totals;
	// not_found for an unknown target.
	Status(name string) (wire.NotificationStatus, error)
	// Statuses returns every target with its totals, by name.
	Statuses() []wire.NotificationStatus
	// SendTo queues a notice for one target; not_found for an unknown
	// target.
	SendTo(name string, n domain.Notice) error
}

// WithNotifications serves the delivery status of notification targets
// from n and sends their test notices through it.
func WithNotifications(n Notifications) Option { return func(o *options) { o.Notifications = n } }

// notificationRequest is the body of PUT /v1/notifications/{name}. A
// url or secret left out keeps the target's: neither is ever returned.
type notificationRequest struct {
	URL    *string  `json:"url"`
	Events []string `json:"events"`
	Format string   `json:"format"`
	Secret *string  `json:"secret"`
	Reason string   `json:"reason"`
}

func (a *API) putNotification(w http.ResponseWriter, r *http.Request, p principal) error {
	name, err := pathID(r, "name", "notification target")
	if err != nil {
		return err
	}
	var req notificationRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	n, created, err := a.svc.PutNotifier(r.Context(), p.change(req.Reason),
		control.NotifierInput{Name: name, URL: req.URL, Events: req.Events, Format: req.Format, Secret: req.Secret})
	if err != nil {
		return err
	}
	writeJSON(w, putStatus(created), wire.TargetOf(n))
	return nil
}

func (a *API) listNotifications(w http.ResponseWriter, r *http.Request, _ principal) error {
	if a.opts.Notifications != nil {
		writeJSON(w, http.StatusOK, a.opts.Notifications.Statuses())
		return nil
	}
	// No deliverer in this process: the targets, with nothing delivered.
	out := []wire.NotificationStatus{}
	for _, n := range a.svc.State().NotifierList() {
		out = append(out, wire.NotificationStatus{NotificationTarget: wire.TargetOf(n)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getNotification(w http.ResponseWriter, r *http.Request, _ principal) error {
	name, err := pathID(r, "name", "notification target")
	if err != nil {
		return err
	}
	if a.opts.Notifications != nil {
		st, err := a.opts.Notifications.Status(name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, st)
		return nil
	}
	n, err := a.svc.State().Notifier(name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NotificationStatus{NotificationTarget: wire.TargetOf(*n), Deliveries: []wire.Delivery{}})
	return nil
}

func (a *API) deleteNotification(w http.ResponseWriter, r *http.Request, p principal) error {
	name, err := pathID(r, "name", "notification target")
	if err != nil {
		return err
	}
	if err := a.svc.DeleteNotifier(r.Context(), p.change(r.URL.Query().Get("reason")), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// testNotification sends a test notice to one target, audited as
// notification.test, and answers 202 with its id: the delivery shows in
// GET /v1/notifications/{name}.
func (a *API) testNotification(w http.ResponseWriter, r *http.Request, p principal) error {
	name, err := pathID(r, "name", "notification target")
	if err != nil {
		return err
	}
	if a.opts.Notifications == nil {
		return domain.Errorf(domain.CodeConflict, "no notifier runs in this process: test notifications are sent by switchback serve")
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	if _, err := a.svc.State().Notifier(name); err != nil {
		return err
	}
	n, err := a.svc.TestNotifier(r.Context(), p.change(req.Reason), name)
	if err != nil {
		return err
	}
	if err := a.opts.Notifications.SendTo(name, n); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": n.ID, "event": n.Event})
	return nil
}
