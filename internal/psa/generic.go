package psa

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Standard Webhooks headers and tolerance.
const (
	headerWebhookID        = "Webhook-Id"
	headerWebhookTimestamp = "Webhook-Timestamp"
	headerWebhookSignature = "Webhook-Signature"

	// timestampTolerance is how far webhook-timestamp may be from now, in
	// either direction, as the Standard Webhooks libraries allow.
	timestampTolerance = 5 * time.Minute

	standardWebhooksSecretPrefix = "whsec_"

	// maxWebhookIDLen bounds webhook-id, which becomes the dedup key that the
	// journal keeps for as long as the event.
	maxWebhookIDLen = 256
)

// genericEntities maps the generic scheme's entity names (before the last
// dot of type) to canonical entity types.
var genericEntities = map[string]string{
	"ticket":         EntityTicket,
	"tickets":        EntityTicket,
	"schedule_entry": EntityScheduleEntry,
	"schedule":       EntityScheduleEntry,
	"scheduleentry":  EntityScheduleEntry,
	"time_entry":     EntityTimeEntry,
	"timeentry":      EntityTimeEntry,
	"company":        EntityCompany,
	"contact":        EntityContact,
}

// genericActions: the generic scheme uses the canonical words themselves.
var genericActions = map[string]string{
	"created": ActionCreated,
	"updated": ActionUpdated,
	"deleted": ActionDeleted,
}

// standardWebhooksKey decodes a Standard Webhooks secret: "whsec_" and the
// base64 of the key bytes. As the Standard Webhooks libraries do, the
// prefix may be left out.
func standardWebhooksKey(secret string) ([]byte, *domain.Error) {
	if secret == "" {
		return nil, unauthorized(domain.CodeNoSecret, "no webhook secret is configured for this partner")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, standardWebhooksSecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, unauthorized(domain.CodeInvalidSecret, "the partner's webhook secret is not a whsec_ secret")
	}
	return key, nil
}

// verifyStandardWebhooks checks a delivery's Standard Webhooks headers
// against key and returns its webhook-id. The timestamp must be within
// timestampTolerance of now; any of the space-separated "v1,<base64>"
// signatures may match; other versions are ignored.
func verifyStandardWebhooks(key []byte, h http.Header, body []byte, now time.Time) (string, *domain.Error) {
	id := h.Get(headerWebhookID)
	ts := h.Get(headerWebhookTimestamp)
	sigs := h.Values(headerWebhookSignature)
	switch {
	case id == "":
		return "", unauthorized(domain.CodeMissingSignature, "the webhook-id header is missing")
	case ts == "":
		return "", unauthorized(domain.CodeMissingSignature, "the webhook-timestamp header is missing")
	case len(sigs) == 0:
		return "", unauthorized(domain.CodeMissingSignature, "the webhook-signature header is missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", unauthorized(domain.CodeBadTimestamp, "the webhook-timestamp header is not Unix seconds")
	}
	// Compare against bounds computed from now so that no timestamp, however
	// far off, can overflow the comparison.
	tol := int64(timestampTolerance / time.Second)
	if n := now.Unix(); sec < n-tol || sec > n+tol {
		return "", unauthorized(domain.CodeStaleTimestamp, "the webhook-timestamp is more than 5 minutes from the receiver's clock")
	}

	mac := hmac.New(sha256.New, key)
	prefix := make([]byte, 0, len(id)+len(ts)+2)
	prefix = append(append(append(append(prefix, id...), '.'), ts...), '.')
	mac.Write(prefix)
	mac.Write(body)
	var sum [sha256.Size]byte
	var want [44]byte // base64.StdEncoding.EncodedLen(sha256.Size)
	base64.StdEncoding.Encode(want[:], mac.Sum(sum[:0]))

	ok := 0
	for _, v := range sigs {
		for v != "" {
			var f string
			f, v, _ = strings.Cut(v, " ")
			version, sig, found := strings.Cut(f, ",")
			if !found || version != "v1" {
				continue
			}
			// Keep comparing after a match: the position of the matching
			// signature is nothing to leak, but neither is it worth a branch.
			ok |= subtle.ConstantTimeCompare([]byte(sig), want[:])
		}
	}
	if ok != 1 {
		return "", unauthorized(domain.CodeBadSignature, "no v1 signature in webhook-signature matches the body")
	}
	return id, nil
}

// genericBody is the part of a Standard Webhooks body the router reads.
type genericBody struct {
	Type      string          `json:"type"`
	Timestamp json.RawMessage `json:"timestamp"`
	Data      struct {
		ID json.RawMessage `json:"id"`
		genericDataStamp
	} `json:"data"`
}

func (d *Decoder) decodeGeneric(secret string, h http.Header, body []byte) ([]Envelope, *domain.Error) {
	key, e := standardWebhooksKey(secret)
	if e != nil {
		return nil, e
	}
	id, e := verifyStandardWebhooks(key, h, body, d.now())
	if e != nil {
		return nil, e
	}
	if len(id) > maxWebhookIDLen {
		return nil, malformed("the webhook-id header is longer than %d bytes", maxWebhookIDLen)
	}
	var b genericBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, malformed("the body is not a Standard Webhooks JSON object")
	}
	dot := strings.LastIndexByte(b.Type, '.')
	if dot < 0 || strings.TrimSpace(b.Type[:dot]) == "" || strings.TrimSpace(b.Type[dot+1:]) == "" {
		return nil, malformed(`the body's "type" is not "<entity>.<action>"`)
	}
	eid, ok := scalarString(b.Data.ID)
	if !ok {
		return nil, malformed(`the body has no "data.id" string or number`)
	}
	src := b.Type[:dot]
	updated, _ := genericStamp(b.Timestamp, b.Data.genericDataStamp)
	return []Envelope{{
		UpdatedAt:  updated,
		EntityType: entity(src, genericEntities),
		SourceType: src,
		Action:     action(b.Type[dot+1:], genericActions),
		EntityID:   eid,
		DeliveryID: id,
		Payload:    clone(body),
	}}, nil
}
