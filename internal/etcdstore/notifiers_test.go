package etcdstore_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
)

// A notification target's secret and URL are sealed in etcd as a
// partner's secret is (a Slack webhook's path is its credential): the raw
// value holds neither, nor the key, the store reads them back, a store
// without the key refuses to load rather than lose them, and a rotation
// reseals them with the new key.
func TestNotifierSecretSealed(t *testing.T) {
	prefix := newPrefix()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	n := domain.Notifier{Name: "ops", URL: "https://hooks.example.com/x9Tq2", Events: []string{domain.NoticeGuardRevert}, Format: domain.FormatStandard, Secret: secret}
	s := open(t, prefix, etcdstore.WithSecretsKey(testKey))
	if err := s.Update(t.Context(), func(tx control.Tx) error { return tx.PutNotifier(n) }); err != nil {
		t.Fatal(err)
	}
	raw := func() []byte {
		t.Helper()
		resp, err := client.Get(t.Context(), prefix+"notifiers/ops")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("read the raw target: %v, %v", resp, err)
		}
		return resp.Kvs[0].Value
	}
	v := raw()
	if bytes.Contains(v, []byte(secret)) || bytes.Contains(v, []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")) {
		t.Fatalf("raw etcd value %s holds the secret", v)
	}
	if bytes.Contains(v, []byte("x9Tq2")) {
		t.Fatalf("raw etcd value %s holds the URL's path", v)
	}
	if !bytes.Contains(v, []byte(`"sealedSecret"`)) || !bytes.Contains(v, []byte(`"sealedUrl"`)) || !bytes.Contains(v, []byte(etcdstore.KeyID(testKey))) {
		t.Errorf("raw etcd value %s: want sealedSecret, sealedUrl and the key's id", v)
	}
	d, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]domain.Notifier{n}, d.Notifiers); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	if _, err := open(t, prefix).Load(t.Context()); err == nil || !strings.Contains(err.Error(), "notification target \"ops\"") {
		t.Errorf("Load without the key = %v, want an error naming the target", err)
	}

	newKey := bytes.Repeat([]byte{0x5c}, 32)
	rotated := open(t, prefix, etcdstore.WithSecretsKeys(newKey, testKey))
	if got, err := rotated.Reseal(t.Context()); err != nil || got != 1 {
		t.Fatalf("Reseal = %d, %v; want 1 (the target)", got, err)
	}
	if v := raw(); !bytes.Contains(v, []byte(etcdstore.KeyID(newKey))) || bytes.Contains(v, []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")) {
		t.Errorf("raw etcd value after Reseal %s: want it sealed with the new key", v)
	}
	d, err = open(t, prefix, etcdstore.WithSecretsKey(newKey)).Load(t.Context())
	if err != nil || len(d.Notifiers) != 1 || d.Notifiers[0].Secret != secret || d.Notifiers[0].URL != n.URL {
		t.Errorf("Load with the new key alone = %+v, %v; want the target with its secret and URL", d.Notifiers, err)
	}
	if got, err := rotated.Reseal(t.Context()); err != nil || got != 0 {
		t.Errorf("Reseal again = %d, %v; want 0", got, err)
	}

	// A slack target, stored by a store without the key (as before URLs
	// were sealed): a reseal seals its URL, the store reads it back.
	slack := domain.Notifier{Name: "chat", URL: "https://hooks.slack.com/services/T/B/Xq7zK", Events: []string{domain.NoticeRevert}, Format: domain.FormatSlack}
	if err := open(t, prefix).Update(t.Context(), func(tx control.Tx) error { return tx.PutNotifier(slack) }); err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Reseal(t.Context()); err != nil || got != 1 {
		t.Fatalf("Reseal of a plain URL = %d, %v; want 1 (the slack target)", got, err)
	}
	resp, err := client.Get(t.Context(), prefix+"notifiers/chat")
	if err != nil || len(resp.Kvs) != 1 || bytes.Contains(resp.Kvs[0].Value, []byte("Xq7zK")) {
		t.Errorf("the slack target after Reseal: %v, %v; want it stored with its URL sealed", resp, err)
	}
	d, err = rotated.Load(t.Context())
	if err != nil || len(d.Notifiers) != 2 || d.Notifiers[0].URL != slack.URL {
		t.Errorf("Load = %+v, %v; want the slack target with its URL first", d.Notifiers, err)
	}
}
