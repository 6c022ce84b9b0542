package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// testNotifiers: targets load as written, secret included (a store that
// seals it opens it again); a later write of a name replaces it whole, a
// deleted one is gone, deleting one that does not exist is no error, and
// a failed Update leaves none of its writes behind.
func testNotifiers(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	notifiers := func() []domain.Notifier {
		t.Helper()
		return normalized(load(t, s)).Notifiers
	}
	want := SampleData().Notifiers
	update(t, s, func(tx control.Tx) error {
		for _, n := range want {
			if err := tx.PutNotifier(n); err != nil {
				return err
			}
		}
		return nil
	})
	if diff := cmp.Diff(want, notifiers()); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	// A slack target replaced by a standard one with a secret, and a
	// standard one whose secret is removed (made slack).
	chat, ops := want[0], want[1]
	chat.Format, chat.Secret, chat.Events, chat.UpdatedAt = domain.FormatStandard, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", domain.NoticeEvents, t0.Add(time.Hour)
	ops.Format, ops.Secret, ops.URL = domain.FormatSlack, "", "https://hooks.slack.com/services/T1/B1/X1"
	update(t, s, func(tx control.Tx) error {
		if err := tx.PutNotifier(chat); err != nil {
			return err
		}
		return tx.PutNotifier(ops)
	})
	if diff := cmp.Diff([]domain.Notifier{chat, ops}, notifiers()); diff != "" {
		t.Errorf("Load after replacing both (-want +got):\n%s", diff)
	}

	boom := errors.New("boom")
	err := s.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.DeleteNotifier("chat"); err != nil {
			return err
		}
		if err := tx.PutNotifier(domain.Notifier{Name: "late", URL: "https://late.example.com", Events: []string{domain.NoticeRevert}, Format: domain.FormatSlack}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	if diff := cmp.Diff([]domain.Notifier{chat, ops}, notifiers()); diff != "" {
		t.Errorf("Load after a failed Update (-want +got):\n%s", diff)
	}

	update(t, s, func(tx control.Tx) error {
		if err := tx.DeleteNotifier("chat"); err != nil {
			return err
		}
		if err := tx.DeleteNotifier("nobody"); err != nil {
			t.Errorf("DeleteNotifier of a target that does not exist: %v", err)
		}
		return nil
	})
	if diff := cmp.Diff([]domain.Notifier{ops}, notifiers(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load after a delete (-want +got):\n%s", diff)
	}
}
