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
// Secret is empty and SealedSecret holds its nonce and ciphertext, sealed
// like a partner's webhook secret (the target's name as additional data,
// so that it cannot be passed off as a partner's or another target's),
// with SecretKeyID naming the key.
type notifierRecord struct {
	domain.Notifier
	SealedSecret []byte `json:"sealedSecret,omitempty"`
	SecretKeyID  string `json:"secretKeyId,omitempty"`
}

func notifierAD(name string) []byte { return []byte("notifier/" + name) }

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
	if s.keys == nil || n.Secret == "" {
		return notifierRecord{Notifier: n}, nil
	}
	a := s.keys.aeads[0]
	nonce := make([]byte, a.NonceSize())
	rand.Read(nonce)
	rec := notifierRecord{SealedSecret: a.Seal(nonce, nonce, []byte(n.Secret), notifierAD(n.Name)), SecretKeyID: s.keys.ids[0]}
	n.Secret = ""
	rec.Notifier = n
	return rec, nil
}

// openNotifier opens r's secret with the key its id names.
func (s *Store) openNotifier(r notifierRecord) (domain.Notifier, error) {
	n := r.Notifier
	if len(r.SealedSecret) == 0 {
		return n, nil
	}
	if s.keys == nil {
		return n, fmt.Errorf("notification target %q: its secret is sealed and this store has no secrets key (--secrets-key-file)", n.Name)
	}
	i := slices.Index(s.keys.ids, r.SecretKeyID)
	if i < 0 {
		return n, fmt.Errorf("notification target %q: its secret is sealed with key %s, which is not among this store's keys (%s): add that key to the secrets key file",
			n.Name, r.SecretKeyID, strings.Join(s.keys.ids, ", "))
	}
	plain, ok := openWith(s.keys.aeads[i], r.SealedSecret, notifierAD(n.Name))
	if !ok {
		return n, fmt.Errorf("notification target %q: key %s does not open its secret: the record is damaged", n.Name, r.SecretKeyID)
	}
	n.Secret = string(plain)
	return n, nil
}

// resealNotifier returns the stored value of a target sealed with the
// first key, and false when it is sealed with it already (or has no
// secret).
func (s *Store) resealNotifier(key string, value []byte) ([]byte, bool, error) {
	var rec notifierRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, false, fmt.Errorf("decode %q: %w", key, err)
	}
	if len(rec.SealedSecret) == 0 && rec.Secret == "" || len(rec.SealedSecret) > 0 && rec.SecretKeyID == s.keys.ids[0] {
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
