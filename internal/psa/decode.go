package psa

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchbackhq/switchback/internal/domain"
)

// PSA kinds, as partners are configured with them.
const (
	KindConnectWise = "connectwise"
	KindAutotask    = "autotask"
	KindHaloPSA     = "halopsa"
	KindGeneric     = "generic"
)

// Canonical entity types.
const (
	EntityTicket        = "ticket"
	EntityScheduleEntry = "schedule_entry"
	EntityTimeEntry     = "time_entry"
	EntityCompany       = "company"
	EntityContact       = "contact"
	EntityUnknown       = "unknown"
)

// Canonical actions.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
	ActionDeleted = "deleted"
)

// Envelope is one event of a delivery.
type Envelope struct {
	// EntityType is canonical: "ticket", "schedule_entry", "time_entry",
	// "company", "contact"; anything else is "unknown" (never dropped).
	EntityType string
	// SourceType is the PSA's own name for the entity type, as sent (for
	// HaloPSA, which sends none, the event name).
	SourceType string
	// Action is canonical: "created", "updated", "deleted"; else the PSA's
	// own word lower-cased.
	Action   string
	EntityID string
	// DeliveryID is the dedup key: the PSA's delivery id where it has one
	// (ConnectWise MessageId, Standard Webhooks webhook-id), else "h:" and
	// the hex SHA-256 of the fields that identify the delivery (see the
	// package documentation for which, per PSA).
	DeliveryID string
	// Payload is the PSA's body for this event as received (for a batched
	// HaloPSA delivery, that item). It is a copy: it never shares memory
	// with the body passed to Decode.
	Payload json.RawMessage
	// UpdatedAt is UpdatedAt(kind, Payload) where the decoder reads it in
	// the pass that reads the rest of the delivery (generic), so that the
	// journal need not parse the payload again for it; zero where it does
	// not, or the payload carries no stamp.
	UpdatedAt time.Time
}

// Decoder verifies and parses deliveries. The zero value is ready to use,
// with the real clock and no ConnectWise key fetching. A Decoder is safe
// for concurrent use once its fields are set.
type Decoder struct {
	// Now is the clock for Standard Webhooks timestamps; nil means time.Now.
	Now func() time.Time
	// Keys fetches ConnectWise signing keys from Metadata.key_url for
	// partners without a configured key; nil means configured keys only.
	Keys *KeyCache
}

// Partner is what the Decoder needs to know of the partner a delivery is
// for.
type Partner struct {
	// Kind is the partner's PSA: "connectwise", "autotask", "halopsa" or
	// "generic".
	Kind string
	// Secret is the partner's configured secret (may be ""; see the package
	// documentation for its format per kind).
	Secret string
	// CompanyID, for a connectwise partner, is the ConnectWise company its
	// callbacks must be for; "" accepts any company.
	CompanyID string
}

// Decode verifies then parses one delivery of a partner whose PSA is kind
// and whose configured secret is secret: DecodePartner for a partner bound
// to no ConnectWise company.
func (d *Decoder) Decode(ctx context.Context, kind, secret string, h http.Header, body []byte) ([]Envelope, error) {
	return d.DecodePartner(ctx, Partner{Kind: kind, Secret: secret}, h, body)
}

// DecodePartner verifies then parses one delivery of partner p. It returns
// at least one Envelope, or a *domain.Error (its status from internal/httperr):
//
//   - 401 when the kind is unknown (domain.CodeUnknownPSA), the scheme needs a
//     secret and there is none or it is unusable (domain.CodeNoSecret,
//     domain.CodeInvalidSecret), the signature or credentials are missing or
//     wrong (domain.CodeMissingSignature, domain.CodeBadSignature, domain.CodeBadTimestamp,
//     domain.CodeStaleTimestamp, domain.CodeMissingCredentials, domain.CodeBadCredentials,
//     domain.CodeKeyRefused), or a ConnectWise callback is not for p.CompanyID
//     (domain.CodeMissingCompany, domain.CodeWrongCompany). Nothing of the body is
//     trusted then.
//   - 429 with domain.CodeKeyUnavailable when a ConnectWise key fetch failed in a
//     way that may pass.
//   - 400 with domain.CodeMalformedBody when the delivery is authentic but cannot
//     be read.
//
// Verification always comes first; the only thing read from an unverified
// body is ConnectWise's Metadata.key_url, which names where the key is and
// is checked against the KeyCache's allow-list before any fetch.
func (d *Decoder) DecodePartner(ctx context.Context, p Partner, h http.Header, body []byte) ([]Envelope, error) {
	var (
		envs []Envelope
		err  *domain.Error
	)
	switch p.Kind {
	case KindGeneric:
		envs, err = d.decodeGeneric(p.Secret, h, body)
	case KindConnectWise:
		envs, err = d.decodeConnectWise(ctx, p.Secret, p.CompanyID, h, body)
	case KindAutotask:
		envs, err = decodeAutotask(p.Secret, h, body)
	case KindHaloPSA:
		envs, err = decodeHalo(p.Secret, h, body)
	default:
		err = unauthorized(domain.CodeUnknownPSA, "the partner's PSA kind is not supported")
	}
	if err != nil {
		// Return a nil interface, never a typed nil, and never envelopes
		// alongside an error.
		return nil, err
	}
	return envs, nil
}

func (d *Decoder) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// scalarString returns a JSON string's value or a JSON number's literal
// text (so 12345 and "12345" give the same id, and large numbers keep every
// digit). Anything else (absent, null, bool, object, array, blank string)
// gives false.
func scalarString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		// The common case, a string without escapes, needs no decoding.
		if n := len(raw); n >= 2 && raw[n-1] == '"' {
			if inner := raw[1 : n-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
				if s := string(inner); strings.TrimSpace(s) != "" {
					return s, true
				}
				return "", false
			}
		}
		var s string
		if json.Unmarshal(raw, &s) != nil || strings.TrimSpace(s) == "" {
			return "", false
		}
		return s, true
	case c == '-' || (c >= '0' && c <= '9'):
		// The body was decoded by encoding/json, so this is a valid number.
		return string(raw), true
	}
	return "", false
}

// optString is scalarString's value, or "" when there is none.
func optString(raw json.RawMessage) string {
	s, _ := scalarString(raw)
	return s
}

// deliveryHash is the DeliveryID of a PSA that has no delivery id of its
// own: "h:" and the hex SHA-256 of the PSA kind and the fields, each
// preceded by its length as a uvarint so that no two lists of fields encode
// the same. Changing it changes every dedup key: a resend across the change
// would be applied twice, so it is pinned by tests.
func deliveryHash(kind string, fields ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, f := range append([]string{kind}, fields...) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	var sum [sha256.Size]byte
	return "h:" + hex.EncodeToString(h.Sum(sum[:0]))
}

// bodyHash is the hex SHA-256 of a delivery's body (or of one event of a
// batch). It stands in a DeliveryID hash where the PSA sends no delivery id
// of its own, so that only a byte-identical resend is taken for the same
// delivery: two different changes of one record must never share a key.
func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// action maps a PSA's action word through words (keys lower-case) to a
// canonical action, or returns the word lower-cased.
func action(word string, words map[string]string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	if a, ok := words[w]; ok {
		return a
	}
	return w
}

// entity maps a PSA's entity type name through names (keys lower-case) to
// a canonical entity type, or "unknown".
func entity(name string, names map[string]string) string {
	if e, ok := names[strings.ToLower(strings.TrimSpace(name))]; ok {
		return e
	}
	return EntityUnknown
}

func clone(b []byte) json.RawMessage {
	return append(json.RawMessage(nil), b...)
}
