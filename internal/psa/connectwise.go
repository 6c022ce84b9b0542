package psa

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
)

const headerContentSignature = "X-Content-Signature"

// connectWiseEntities maps ConnectWise callback Types to canonical types.
var connectWiseEntities = map[string]string{
	"ticket":    EntityTicket,
	"schedule":  EntityScheduleEntry,
	"time":      EntityTimeEntry,
	"timeentry": EntityTimeEntry,
	"company":   EntityCompany,
	"contact":   EntityContact,
}

var connectWiseActions = map[string]string{
	"added":   ActionCreated,
	"updated": ActionUpdated,
	"deleted": ActionDeleted,
}

// connectWiseBody is the part of a ConnectWise Manage callback the router
// reads. Entity, the record as an escaped JSON string, stays in the payload.
type connectWiseBody struct {
	MessageID json.RawMessage `json:"MessageId"`
	FromURL   json.RawMessage `json:"FromUrl"`
	CompanyID json.RawMessage `json:"CompanyId"`
	// ProductInstanceID names the company where a callback has no
	// CompanyId.
	ProductInstanceID json.RawMessage `json:"ProductInstanceId"`
	Type              string          `json:"Type"`
	Action            string          `json:"Action"`
	ID                json.RawMessage `json:"ID"`
	Entity            json.RawMessage `json:"Entity"`
}

// connectWiseKeyURL is all that is read of a callback before it is
// verified: where its signing key is published.
type connectWiseKeyURL struct {
	Metadata struct {
		KeyURL string `json:"key_url"`
	} `json:"Metadata"`
}

func (d *Decoder) decodeConnectWise(ctx context.Context, secret, companyID string, h http.Header, body []byte) ([]Envelope, *domain.Error) {
	if secret == "" && d.Keys == nil {
		return nil, unauthorized(domain.CodeNoSecret, "no ConnectWise signing key is configured for this partner")
	}
	sig := strings.TrimSpace(h.Get(headerContentSignature))
	if sig == "" {
		return nil, unauthorized(domain.CodeMissingSignature, "the x-content-signature header is missing")
	}
	signingKey := secret
	if signingKey == "" {
		var k connectWiseKeyURL
		if json.Unmarshal(body, &k) != nil || k.Metadata.KeyURL == "" {
			return nil, unauthorized(domain.CodeKeyRefused, "the callback names no Metadata.key_url to verify it with")
		}
		key, err := d.Keys.SigningKey(ctx, k.Metadata.KeyURL)
		if err != nil {
			return nil, asError(err)
		}
		signingKey = key
	}
	if !connectWiseSignatureOK(signingKey, body, sig) {
		return nil, unauthorized(domain.CodeBadSignature, "x-content-signature does not match the body")
	}

	var b connectWiseBody
	perr := json.Unmarshal(body, &b)
	if companyID != "" {
		// Checked before the body may be refused as malformed: a callback
		// for another company is not this partner's to judge.
		if e := checkConnectWiseCompany(companyID, b, perr == nil); e != nil {
			return nil, e
		}
	}
	if perr != nil {
		return nil, malformed("the body is not a ConnectWise callback JSON object")
	}
	if strings.TrimSpace(b.Type) == "" || strings.TrimSpace(b.Action) == "" {
		return nil, malformed(`the callback has no "Type" or no "Action"`)
	}
	eid, ok := scalarString(b.ID)
	if !ok {
		return nil, malformed(`the callback has no "ID"`)
	}
	did, ok := scalarString(b.MessageID)
	if !ok {
		// The body is in the hash so that two different callbacks about one
		// record without a MessageId are never taken for one resent
		// callback: only a byte-identical resend is a duplicate.
		did = deliveryHash(KindConnectWise, optString(b.CompanyID), b.Type, b.Action, eid,
			optString(b.FromURL), bodyHash(body))
	}
	return []Envelope{{
		EntityType: entity(b.Type, connectWiseEntities),
		SourceType: b.Type,
		Action:     action(b.Action, connectWiseActions),
		EntityID:   eid,
		DeliveryID: did,
		Payload:    clone(body),
	}}, nil
}

// connectWiseSignatureOK reports whether sig is the base64 HMAC-SHA256 of
// body keyed by the SHA-256 of signingKey.
func connectWiseSignatureOK(signingKey string, body []byte, sig string) bool {
	k := sha256.Sum256([]byte(signingKey))
	mac := hmac.New(sha256.New, k[:])
	mac.Write(body)
	var sum [sha256.Size]byte
	var want [44]byte
	base64.StdEncoding.Encode(want[:], mac.Sum(sum[:0]))
	return subtle.ConstantTimeCompare([]byte(sig), want[:]) == 1
}

// checkConnectWiseCompany refuses a verified callback that is not for the
// partner's company: the signature proves that ConnectWise sent it (with a
// key fetched from Metadata.key_url, for any of its tenants), not for
// whom. The callback's company is its CompanyId, or without one its
// ProductInstanceId, compared regardless of case as ConnectWise compares
// company ids. parsed is whether b was read from the body at all.
func checkConnectWiseCompany(companyID string, b connectWiseBody, parsed bool) *domain.Error {
	got := ""
	if parsed {
		got = firstNonBlank(optString(b.CompanyID), optString(b.ProductInstanceID))
	}
	if got == "" {
		return unauthorized(domain.CodeMissingCompany, "the callback names no company (CompanyId or ProductInstanceId), and this partner is bound to one")
	}
	if !strings.EqualFold(strings.TrimSpace(got), companyID) {
		return unauthorized(domain.CodeWrongCompany, "the callback is for another ConnectWise company than this partner's")
	}
	return nil
}
