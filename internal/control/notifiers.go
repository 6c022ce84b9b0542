package control

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// NotifierInput is what a client sets on a notification target. A nil
// URL or Secret keeps the target's (neither is ever returned, so a client
// cannot send it back); both are required to create one. An empty Format
// is the default, standard.
type NotifierInput struct {
	Name   string
	URL    *string
	Events []string
	Format string
	Secret *string
}

// Notifier returns the named target, with its secret, or a not_found
// error.
func (s *State) Notifier(name string) (*domain.Notifier, error) {
	n, ok := s.Notifiers[name]
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "notification target %q does not exist", name)
	}
	return n, nil
}

// NotifierList returns the targets by name, with their secrets: for the
// one that delivers, package notify. Everything shown goes through
// wire.TargetOf.
func (s *State) NotifierList() []domain.Notifier {
	out := make([]domain.Notifier, 0, len(s.Notifiers))
	for _, name := range slices.Sorted(maps.Keys(s.Notifiers)) {
		out = append(out, *s.Notifiers[name])
	}
	return out
}

// withNotifier returns a copy of s holding n.
func (s *State) withNotifier(n domain.Notifier) *State {
	next := s.clone()
	next.Notifiers = maps.Clone(s.Notifiers)
	next.Notifiers[n.Name] = &n
	return next
}

// withoutNotifier returns a copy of s without the named target.
func (s *State) withoutNotifier(name string) *State {
	next := s.clone()
	next.Notifiers = maps.Clone(s.Notifiers)
	delete(next.Notifiers, name)
	return next
}

// notifierAudit is a target as the audit log shows it: wire.TargetOf,
// and on a change whether the URL and the secret changed, which it never
// shows.
type notifierAudit struct {
	wire.NotificationTarget
	URLChanged    bool `json:"urlChanged,omitempty"`
	SecretChanged bool `json:"secretChanged,omitempty"`
}

// PutNotifier creates or replaces a notification target, audited as
// notification.put (the secret and the URL's path never in the entry),
// and reports whether it created it. It returns an invalid_argument error
// naming the field for a target domain.Notifier.Validate refuses, or for
// a new one without a URL.
func (s *Service) PutNotifier(ctx context.Context, c Change, in NotifierInput) (domain.Notifier, bool, error) {
	if err := domain.CheckID("notification target", in.Name); err != nil {
		return domain.Notifier{}, false, err
	}
	var out domain.Notifier
	var created bool
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		n := domain.Notifier{Name: in.Name, Events: slices.Clone(in.Events), Format: in.Format, CreatedAt: now, UpdatedAt: now}
		if n.Format == "" {
			n.Format = domain.FormatStandard
		}
		old, exists := cur.Notifiers[in.Name]
		if exists {
			n.CreatedAt, n.URL, n.Secret = old.CreatedAt, old.URL, old.Secret
		}
		if in.URL != nil {
			n.URL = *in.URL
		}
		if in.Secret != nil {
			n.Secret = *in.Secret
		}
		if err := n.Validate(); err != nil {
			return plan{}, err
		}
		created, out = !exists, n
		if exists && old.URL == n.URL && old.Format == n.Format && old.Secret == n.Secret && slices.Equal(old.Events, n.Events) {
			out = *old
			return plan{}, nil
		}
		rec := record{action: "notification.put", target: "notification/" + n.Name, after: notifierAudit{NotificationTarget: wire.TargetOf(n)}}
		if exists {
			rec.before = wire.TargetOf(*old)
			rec.after = notifierAudit{NotificationTarget: wire.TargetOf(n), URLChanged: old.URL != n.URL, SecretChanged: old.Secret != n.Secret}
		}
		return plan{
			next:    cur.withNotifier(n),
			writes:  func(tx Tx) error { return tx.PutNotifier(n) },
			records: []record{rec},
		}, nil
	})
	return out, created, err
}

// DeleteNotifier removes a notification target, audited as
// notification.delete; notices already queued for it are given up. It
// returns a not_found error for a target that does not exist.
func (s *Service) DeleteNotifier(ctx context.Context, c Change, name string) error {
	if err := domain.CheckID("notification target", name); err != nil {
		return err
	}
	_, err := s.apply(ctx, c, func(cur *State, _ time.Time) (plan, error) {
		old, err := cur.Notifier(name)
		if err != nil {
			return plan{}, err
		}
		return plan{
			next:    cur.withoutNotifier(name),
			writes:  func(tx Tx) error { return tx.DeleteNotifier(name) },
			records: []record{{action: "notification.delete", target: "notification/" + name, before: wire.TargetOf(*old)}},
		}, nil
	})
	return err
}

// NoticeTest is the event of a test notice: sent to one target, whatever
// events it asks for, by TestNotifier's caller.
const NoticeTest = "test"

// TestNotifier audits a test of the named target as notification.test and
// returns the notice to send it, with its id and time: the caller hands it
// to the one target (notify.Notifier.SendTo). It returns a not_found error
// for a target that does not exist.
func (s *Service) TestNotifier(ctx context.Context, c Change, name string) (domain.Notice, error) {
	n := domain.Notice{ID: domain.NewNoticeID(), Event: NoticeTest, Actor: c.Actor, Target: "notification/" + name, Reason: c.Reason}
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		if _, err := cur.Notifier(name); err != nil {
			return plan{}, err
		}
		n.At = now
		return plan{records: []record{{action: "notification.test", target: "notification/" + name, after: map[string]string{"notice": n.ID}}}}, nil
	})
	if err != nil {
		return domain.Notice{}, err
	}
	n.Text = oneLine("switchback test notification for target " + name + " from " + c.Actor + reasonSuffix(c.Reason))
	n.Detail = map[string]string{"target": name}
	return n, nil
}

// maxNoticeText bounds a notice's Text, one line for people.
const maxNoticeText = 500

// oneLine makes s a notice's Text: line breaks and tabs made spaces,
// control characters dropped, cut to maxNoticeText characters.
func oneLine(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			r = ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			continue
		}
		if n == maxNoticeText-1 {
			b.WriteRune('…')
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// reasonSuffix is ": reason" for a notice's text, or nothing.
func reasonSuffix(reason string) string {
	if strings.TrimSpace(reason) == "" {
		return ""
	}
	return ": " + reason
}
