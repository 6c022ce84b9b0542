package etcdstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

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

// KeyID names a secrets key without revealing it: the first 8 hex digits
// of its SHA-256 (`echo HEXKEY | xxd -r -p | sha256sum | cut -c1-8` prints
// it for a key in hex). A sealed secret records
// the id of the key that sealed it, and errors and logs name keys by it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// keyring holds a store's secrets keys in the order given: the first
// seals, every one opens.
type keyring struct {
	ids   []string
	aeads []sealer
}

func newKeyring(keys [][]byte) (*keyring, error) {
	k := &keyring{}
	for _, key := range keys {
		a, err := newSealer(key)
		if err != nil {
			return nil, err
		}
		k.ids = append(k.ids, KeyID(key))
		k.aeads = append(k.aeads, a)
	}
	return k, nil
}

// partnerRecord is a partner as stored. With a secrets key, Secret is
// empty and PSAAPI nil; SealedSecret holds the secret's nonce and
// ciphertext, SealedPSAAPI the PSA API access's (its whole JSON, base URL
// included), and SecretKeyID names the key that sealed both (empty for a
// secret sealed before key ids, when there was no PSA API access). Each is
// sealed with its own associated data, so that neither can be passed off
// as the other, nor as another partner's.
type partnerRecord struct {
	domain.Partner
	SealedSecret []byte `json:"sealedSecret,omitempty"`
	SealedPSAAPI []byte `json:"sealedPsaApi,omitempty"`
	SecretKeyID  string `json:"secretKeyId,omitempty"`
}

func (r partnerRecord) sealed() bool { return len(r.SealedSecret) > 0 || len(r.SealedPSAAPI) > 0 }

// errUnsealable is wrapped when a sealed secret cannot be opened.
var errUnsealable = errors.New("a partner's secrets are sealed and cannot be opened with this store's secrets keys")

func secretAD(partner string) []byte { return []byte("partner/" + partner) }
func psaAPIAD(partner string) []byte { return []byte("partner/" + partner + "/psaApi") }

func (s *Store) sealPartner(p domain.Partner) (partnerRecord, error) {
	if s.keys == nil || (p.Secret == "" && p.PSAAPI == nil) {
		return partnerRecord{Partner: p}, nil
	}
	a := s.keys.aeads[0]
	seal := func(plain, ad []byte) []byte {
		nonce := make([]byte, a.NonceSize())
		rand.Read(nonce)
		return a.Seal(nonce, nonce, plain, ad)
	}
	rec := partnerRecord{SecretKeyID: s.keys.ids[0]}
	if p.Secret != "" {
		rec.SealedSecret = seal([]byte(p.Secret), secretAD(p.ID))
	}
	if p.PSAAPI != nil {
		plain, err := json.Marshal(p.PSAAPI)
		if err != nil {
			return partnerRecord{}, fmt.Errorf("partner %q: encode its PSA API access: %w", p.ID, err)
		}
		rec.SealedPSAAPI = seal(plain, psaAPIAD(p.ID))
	}
	p.Secret, p.PSAAPI = "", nil
	rec.Partner = p
	return rec, nil
}

// openPartner opens r's secret and PSA API access with the key its id
// names; a record sealed before key ids is tried with each key in turn.
func (s *Store) openPartner(r partnerRecord) (domain.Partner, error) {
	p := r.Partner
	if !r.sealed() {
		return p, nil
	}
	if s.keys == nil {
		return p, fmt.Errorf("partner %q: %w (no key set)", p.ID, errUnsealable)
	}
	if r.SecretKeyID != "" {
		i := slices.Index(s.keys.ids, r.SecretKeyID)
		if i < 0 {
			return p, fmt.Errorf("partner %q: %w: it is sealed with key %s, which is not among this store's keys (%s): add that key to the secrets key file",
				p.ID, errUnsealable, r.SecretKeyID, strings.Join(s.keys.ids, ", "))
		}
		opened, ok := openRecord(s.keys.aeads[i], r)
		if !ok {
			return p, fmt.Errorf("partner %q: %w: key %s does not open it: the record is damaged", p.ID, errUnsealable, r.SecretKeyID)
		}
		return opened, nil
	}
	for _, a := range s.keys.aeads {
		if opened, ok := openRecord(a, r); ok {
			return opened, nil
		}
	}
	return p, fmt.Errorf("partner %q: %w: it was sealed before keys had ids, and none of this store's keys (%s) opens it",
		p.ID, errUnsealable, strings.Join(s.keys.ids, ", "))
}

// openRecord opens every sealed field of r with a, or reports false.
func openRecord(a sealer, r partnerRecord) (domain.Partner, bool) {
	p := r.Partner
	if len(r.SealedSecret) > 0 {
		plain, ok := openWith(a, r.SealedSecret, secretAD(p.ID))
		if !ok {
			return p, false
		}
		p.Secret = string(plain)
	}
	if len(r.SealedPSAAPI) > 0 {
		plain, ok := openWith(a, r.SealedPSAAPI, psaAPIAD(p.ID))
		if !ok {
			return p, false
		}
		var api domain.PSAAPI
		if json.Unmarshal(plain, &api) != nil {
			return p, false
		}
		p.PSAAPI = &api
	}
	return p, true
}

func openWith(a sealer, sealed, ad []byte) ([]byte, bool) {
	n := a.NonceSize()
	if len(sealed) < n {
		return nil, false
	}
	plain, err := a.Open(nil, sealed[:n], sealed[n:], ad)
	return plain, err == nil
}

// needsReseal tells whether r is not sealed with the first key: sealed
// with another, sealed before key ids, or a secret or PSA API access in
// plain text.
func (s *Store) needsReseal(r partnerRecord) bool {
	if !r.sealed() {
		return r.Secret != "" || r.PSAAPI != nil
	}
	return r.SecretKeyID != s.keys.ids[0]
}

// ErrNoSecretsKey is returned by Reseal on a store opened without a
// secrets key.
var ErrNoSecretsKey = errors.New("the store has no secrets key to reseal with")

// resealItem is a partner record to rewrite if its key is still at rev.
type resealItem struct {
	key, value string
	rev        int64
}

// Reseal rewrites every partner whose secret or PSA API access is not
// sealed with the first secrets key (sealed with another key, sealed
// before key ids, or stored in plain text) sealed with the first, and
// every notification target's secret likewise, and returns how many
// partners and targets it rewrote.
// The secrets do not change, so neither do the snapshot version and the
// audit log: only partner keys are written, which no replica's watch
// follows. The writes go in transactions within the store's limits, each
// partner's conditional on it being as read: a partner changed meanwhile
// (by a replica updating it, or resealing it first) is read again and
// resealed only if it still needs it, so concurrent Reseals and Updates
// lose nothing.
//
// A partner whose secrets none of the keys opens is left as it is; Reseal
// rewrites the others and then returns an error wrapping the first such
// failure (naming the partner and the key id). It also returns
// ErrNoSecretsKey, ErrClosed, ctx's error, an error wrapping the
// client's, or a domain error of code conflict wrapping ErrConflict when
// a batch changed under it Attempts times.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if s.keys == nil {
		return 0, ErrNoSecretsKey
	}
	var kvs []*mvccpb.KeyValue
	for _, table := range []string{"partners", "notifiers"} {
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		resp, err := s.client.Get(rctx, s.prefix+table+"/", clientv3.WithPrefix())
		cancel()
		if err != nil {
			return 0, unavailable(fmt.Errorf("reseal: read %s: %w", table, err))
		}
		kvs = append(kvs, resp.Kvs...)
	}
	var failed []error
	plan := func(key string, value []byte, rev int64) (resealItem, bool) {
		if strings.HasPrefix(key, s.prefix+"notifiers/") {
			v, needed, err := s.resealNotifier(key, value)
			if err != nil {
				failed = append(failed, err)
			}
			return resealItem{key: key, value: string(v), rev: rev}, needed
		}
		var rec partnerRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			failed = append(failed, fmt.Errorf("decode %q: %w", key, err))
			return resealItem{}, false
		}
		if !s.needsReseal(rec) {
			return resealItem{}, false
		}
		p, err := s.openPartner(rec)
		if err != nil {
			failed = append(failed, err)
			return resealItem{}, false
		}
		sealed, err := s.sealPartner(p)
		if err != nil {
			failed = append(failed, err)
			return resealItem{}, false
		}
		v, err := json.Marshal(sealed)
		if err != nil {
			failed = append(failed, fmt.Errorf("encode partner %q: %w", p.ID, err))
			return resealItem{}, false
		}
		return resealItem{key: key, value: string(v), rev: rev}, true
	}
	var batch []resealItem
	size, n := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		done, err := s.resealBatch(ctx, batch, plan)
		n += done
		batch, size = batch[:0], 0
		return err
	}
	for _, kv := range kvs {
		it, ok := plan(string(kv.Key), kv.Value, kv.ModRevision)
		if !ok {
			continue
		}
		// etcd counts a nested transaction's operation against what its
		// parent leaves: a batch takes one fewer than the limit.
		if len(batch) >= max(1, s.maxOps-1) || size+it.size() > s.maxBytes-requestSlack {
			if err := flush(); err != nil {
				return n, err
			}
		}
		batch = append(batch, it)
		size += it.size()
	}
	if err := flush(); err != nil {
		return n, err
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("reseal: %d partners or notification targets left as they were; the first: %w", len(failed), failed[0])
	}
	return n, nil
}

// size estimates an item's share of a transaction as commit does: its
// compare, its put and its get, in a nested transaction.
func (it resealItem) size() int { return 3*len(it.key) + len(it.value) + 64 }

// resealBatch writes batch in one transaction of one nested transaction
// per partner, conditional on its key's mod revision, so that a partner
// changed meanwhile fails alone; the transaction reads such a partner
// again instead, and if it still needs resealing it is planned anew and
// written in the next round, up to Attempts rounds. It returns how many
// partners it rewrote.
func (s *Store) resealBatch(ctx context.Context, batch []resealItem, plan func(string, []byte, int64) (resealItem, bool)) (int, error) {
	n := 0
	for attempt := range Attempts {
		if attempt > 0 {
			// As in update: another replica changed these partners; wait
			// a random while, longer each time.
			if err := sleep(ctx, time.Duration(mrand.Int64N(int64(time.Millisecond<<(2*attempt))))); err != nil {
				return n, err
			}
		}
		if err := s.check(ctx); err != nil {
			return n, err
		}
		ops := make([]clientv3.Op, 0, len(batch))
		for _, it := range batch {
			ops = append(ops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(it.key), "=", it.rev)},
				[]clientv3.Op{clientv3.OpPut(it.key, it.value)},
				[]clientv3.Op{clientv3.OpGet(it.key)}))
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		resp, err := s.client.Txn(wctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return n, unavailable(fmt.Errorf("reseal: etcd commit: %w", err))
		}
		var again []resealItem
		for _, r := range resp.Responses {
			sub := r.GetResponseTxn()
			if sub.Succeeded {
				n++
				continue
			}
			kvs := sub.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 0 {
				continue // deleted meanwhile
			}
			if it, ok := plan(string(kvs[0].Key), kvs[0].Value, kvs[0].ModRevision); ok {
				again = append(again, it)
			}
		}
		if len(again) == 0 {
			return n, nil
		}
		batch = again
	}
	return n, &domain.Error{Code: domain.CodeConflict, Message: "partners changed under every attempt to reseal them; run it again", Err: ErrConflict}
}
