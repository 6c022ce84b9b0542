package psa

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

const (
	headerHookSignature = "X-Hook-Signature"
	autotaskSigPrefix   = "sha1="
)

// autotaskEntities maps Autotask EntityTypes to canonical types.
var autotaskEntities = map[string]string{
	"ticket":      EntityTicket,
	"contact":     EntityContact,
	"account":     EntityCompany,
	"company":     EntityCompany,
	"timeentry":   EntityTimeEntry,
	"servicecall": EntityScheduleEntry,
}

var autotaskActions = map[string]string{
	"create": ActionCreated,
	"update": ActionUpdated,
	"delete": ActionDeleted,
}

// autotaskBody is the part of an Autotask webhook the router reads; Fields
// (only the subscribed ones) stays in the payload.
type autotaskBody struct {
	GUID           json.RawMessage `json:"Guid"`
	EntityType     string          `json:"EntityType"`
	Action         string          `json:"Action"`
	ID             json.RawMessage `json:"Id"`
	EventTime      json.RawMessage `json:"EventTime"`
	SequenceNumber json.RawMessage `json:"SequenceNumber"`
}

func decodeAutotask(secret string, h http.Header, body []byte) ([]Envelope, *Error) {
	if secret == "" {
		return nil, unauthorized(CodeNoSecret, "no Autotask webhook secret is configured for this partner")
	}
	sig := strings.TrimSpace(h.Get(headerHookSignature))
	if sig == "" {
		return nil, unauthorized(CodeMissingSignature, "the x-hook-signature header is missing")
	}
	enc, ok := strings.CutPrefix(sig, autotaskSigPrefix)
	if !ok {
		return nil, unauthorized(CodeBadSignature, `x-hook-signature does not start with "sha1="`)
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	var sum [sha1.Size]byte
	var want [28]byte // base64.StdEncoding.EncodedLen(sha1.Size)
	base64.StdEncoding.Encode(want[:], mac.Sum(sum[:0]))
	if subtle.ConstantTimeCompare([]byte(enc), want[:]) != 1 {
		return nil, unauthorized(CodeBadSignature, "x-hook-signature does not match the body")
	}

	var b autotaskBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, malformed("the body is not an Autotask webhook JSON object")
	}
	if strings.TrimSpace(b.EntityType) == "" || strings.TrimSpace(b.Action) == "" {
		return nil, malformed(`the webhook has no "EntityType" or no "Action"`)
	}
	eid, ok := scalarString(b.ID)
	if !ok {
		return nil, malformed(`the webhook has no "Id"`)
	}
	// Autotask has no delivery id, but the webhook's Guid with the event's
	// SequenceNumber names one event, and a retry resends both. Without
	// them nothing in the body tells two changes of one record apart (the
	// same Id and Action, other Fields), so the body itself joins the hash:
	// only a byte-identical resend is then a duplicate.
	guid, seq := optString(b.GUID), optString(b.SequenceNumber)
	fields := []string{guid, b.EntityType, eid, b.Action, seq, optString(b.EventTime)}
	if guid == "" || seq == "" {
		fields = append(fields, bodyHash(body))
	}
	did := deliveryHash(KindAutotask, fields...)
	return []Envelope{{
		EntityType: entity(b.EntityType, autotaskEntities),
		SourceType: b.EntityType,
		Action:     action(b.Action, autotaskActions),
		EntityID:   eid,
		DeliveryID: did,
		Payload:    clone(body),
	}}, nil
}
