package etcdstore

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
)

// notifierRecord is a notification target as stored. With a secrets key,
// Secret and URL are empty and SealedSecret and SealedURL hold their
// nonce and ciphertext, sealed like a partner's webhook secret (the
// target's name in the additional data, so that neither can be passed off
// as a partner's or another target's), with SecretKeyID naming the key.
// The URL is sealed because a Slack webhook's path is its credential.
type notifierRecord struct {
	domain.Notifier
	SealedSecret []byte `json:"sealedSecret,omitempty"`
	SealedURL    []byte `json:"sealedUrl,omitempty"`
	SecretKeyID  string `json:"secretKeyId,omitempty"`
}

func notifierAD(name string) []byte    { return []byte("notifier/" + name) }
func notifierURLAD(name string) []byte { return []byte("notifier-url/" + name) }

func (t *tx) PutNotifier(n domain.Notifier) error {
	rec, err := t.s.sealNotifier(n)
	if err != nil {
		return err
	}
	return t.putJSON(t.s.key("notifiers", n.Name), rec)
}

func (t *tx) DeleteNotifier(name string) error {
	t.del(t.s.key("notifiers", name))
	return nil
}

func (s *Store) sealNotifier(n domain.Notifier) (notifierRecord, error) {
	if s.keys == nil || n.Secret == "" && n.URL == "" {
		return notifierRecord{Notifier: n}, nil
	}
	a := s.keys.aeads[0]
	seal := func(plain string, ad []byte) []byte {
		if plain == "" {
			return nil
		}
		nonce := make([]byte, a.NonceSize())
		rand.Read(nonce)
		return a.Seal(nonce, nonce, []byte(plain), ad)
	}
	rec := notifierRecord{SealedSecret: seal(n.Secret, notifierAD(n.Name)), SealedURL: seal(n.URL, notifierURLAD(n.Name)),
		SecretKeyID: s.keys.ids[0]}
	n.Secret, n.URL = "", ""
	rec.Notifier = n
	return rec, nil
}

// sealed tells whether r holds a sealed secret or URL.
func (r notifierRecord) sealed() bool { return len(r.SealedSecret) > 0 || len(r.SealedURL) > 0 }

// openNotifier opens r's secret and URL with the key its id names.
func (s *Store) openNotifier(r notifierRecord) (domain.Notifier, error) {
	n := r.Notifier
	if !r.sealed() {
		return n, nil
	}
	if s.keys == nil {
		return n, fmt.Errorf("notification target %q: its secret and URL are sealed and this store has no secrets key (--secrets-key-file)", n.Name)
	}
	i := slices.Index(s.keys.ids, r.SecretKeyID)
	if i < 0 {
		return n, fmt.Errorf("notification target %q: its secret and URL are sealed with key %s, which is not among this store's keys (%s): add that key to the secrets key file",
			n.Name, r.SecretKeyID, strings.Join(s.keys.ids, ", "))
	}
	for _, f := range []struct {
		sealed, ad []byte
		into       *string
	}{{r.SealedSecret, notifierAD(n.Name), &n.Secret}, {r.SealedURL, notifierURLAD(n.Name), &n.URL}} {
		if len(f.sealed) == 0 {
			continue
		}
		plain, ok := openWith(s.keys.aeads[i], f.sealed, f.ad)
		if !ok {
			return n, fmt.Errorf("notification target %q: key %s does not open its secret or URL: the record is damaged", n.Name, r.SecretKeyID)
		}
		*f.into = string(plain)
	}
	return n, nil
}

// resealNotifier returns the stored value of a target sealed with the
// first key, and false when it is sealed with it already (or has neither
// secret nor URL).
func (s *Store) resealNotifier(key string, value []byte) ([]byte, bool, error) {
	var rec notifierRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, false, fmt.Errorf("decode %q: %w", key, err)
	}
	// Sealed with the first key, and nothing left in plain text (a URL
	// stored before URLs were sealed is).
	if rec.Secret == "" && rec.URL == "" && (!rec.sealed() || rec.SecretKeyID == s.keys.ids[0]) {
		return nil, false, nil
	}
	n, err := s.openNotifier(rec)
	if err != nil {
		return nil, false, err
	}
	sealed, err := s.sealNotifier(n)
	if err != nil {
		return nil, false, err
	}
	v, err := json.Marshal(sealed)
	if err != nil {
		return nil, false, fmt.Errorf("encode notification target %q: %w", n.Name, err)
	}
	return v, true, nil
}
