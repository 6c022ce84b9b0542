package etcdstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/switchbackhq/switchback/internal/domain"
)

type sealer = cipher.AEAD

func newSealer(key []byte) (sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// partnerRecord is a partner as stored: with a secrets key, Secret is
// empty and SealedSecret holds nonce and ciphertext.
type partnerRecord struct {
	domain.Partner
	SealedSecret []byte `json:"sealedSecret,omitempty"`
}

// errUnsealable is wrapped when a sealed secret cannot be opened.
var errUnsealable = errors.New("a partner's secret is sealed and cannot be opened with this store's secrets key")

func (s *Store) sealPartner(p domain.Partner) (partnerRecord, error) {
	if s.aead == nil || p.Secret == "" {
		return partnerRecord{Partner: p}, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, []byte(p.Secret), []byte("partner/"+p.ID))
	p.Secret = ""
	return partnerRecord{Partner: p, SealedSecret: sealed}, nil
}

func (s *Store) openPartner(r partnerRecord) (domain.Partner, error) {
	p := r.Partner
	if len(r.SealedSecret) == 0 {
		return p, nil
	}
	if s.aead == nil {
		return p, fmt.Errorf("partner %q: %w (no key set)", p.ID, errUnsealable)
	}
	n := s.aead.NonceSize()
	if len(r.SealedSecret) < n {
		return p, fmt.Errorf("partner %q: %w (too short)", p.ID, errUnsealable)
	}
	plain, err := s.aead.Open(nil, r.SealedSecret[:n], r.SealedSecret[n:], []byte("partner/"+p.ID))
	if err != nil {
		return p, fmt.Errorf("partner %q: %w", p.ID, errUnsealable)
	}
	p.Secret = string(plain)
	return p, nil
}
