package psa

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/switchbackhq/switchback/internal/domain"
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

func decodeAutotask(secret string, h http.Header, body []byte) ([]Envelope, *domain.Error) {
	if secret == "" {
		return nil, unauthorized(domain.CodeNoSecret, "no Autotask webhook secret is configured for this partner")
	}
	sig := strings.TrimSpace(h.Get(headerHookSignature))
	if sig == "" {
		return nil, unauthorized(domain.CodeMissingSignature, "the x-hook-signature header is missing")
	}
	enc, ok := strings.CutPrefix(sig, autotaskSigPrefix)
	if !ok {
		return nil, unauthorized(domain.CodeBadSignature, `x-hook-signature does not start with "sha1="`)
	}
	if !autotaskSignatureOK(secret, body, enc) {
		return nil, unauthorized(domain.CodeBadSignature, "x-hook-signature does not match the body")
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

// autotaskSignatureOK reports whether sig (without "sha1=") is the base64
// HMAC-SHA1, keyed by secret, of the body or of one of its escaped forms
// (see autotaskEscapings). Every form that differs from the body is
// computed and compared, in constant time, whatever matched before.
func autotaskSignatureOK(secret string, body []byte, sig string) bool {
	mac := hmac.New(sha1.New, []byte(secret))
	var sum [sha1.Size]byte
	var want [28]byte // base64.StdEncoding.EncodedLen(sha1.Size)
	ok := false
	check := func(b []byte) {
		mac.Reset()
		mac.Write(b)
		base64.StdEncoding.Encode(want[:], mac.Sum(sum[:0]))
		ok = hmac.Equal([]byte(sig), want[:]) || ok
	}
	check(body)
	for _, e := range autotaskEscapings {
		if esc, changed := e.escape(body); changed {
			check(esc)
		}
	}
	return ok
}

// jsonEscaping is a way of writing the strings of a JSON text with more
// characters as \uXXXX escapes than the text has: the escaped text means
// the same JSON value.
type jsonEscaping struct {
	hex string // the hex digits, lower- or upper-case
	// chars are the ASCII characters of a string written as \u00XX. '"'
	// and '\\', already escaped in the text as \" and \\, are listed
	// when those escapes are rewritten too.
	chars string
}

// autotaskEscapings are the escaped forms of a body that Autotask may
// have signed. Autotask signs the body with some characters of its
// strings written as \uXXXX while it sends them literally, so a ticket
// titled "Café & Co" would fail a check of the raw bytes only. Inside
// strings, each character listed, and every non-ASCII character (as
// UTF-16, so outside the BMP as a surrogate pair), becomes \uXXXX:
//
//   - & < > ' " \ + with lower-case hex, as JSON encoders write it (Go's,
//     Newtonsoft's);
//   - & < > ' " + ` with upper-case hex, leaving \\ alone, as .NET's
//     System.Text.Json default encoder writes it (and the n8n Autotask
//     node, release 0.6.2, verifies it).
var autotaskEscapings = []jsonEscaping{
	{hex: "0123456789abcdef", chars: `&<>'"\+`},
	{hex: "0123456789ABCDEF", chars: "&<>'\"+`"},
}

// escape returns text with e applied to its strings, and whether that
// changed anything (if not, text itself is returned). text need not be
// valid JSON: what is not understood is copied as it is.
func (e jsonEscaping) escape(text []byte) ([]byte, bool) {
	var out []byte // nil until the first change
	// put writes the escapes of rs in place of what text holds from i on.
	put := func(i int, rs ...rune) {
		if out == nil {
			out = append(make([]byte, 0, len(text)+len(text)/8+16), text[:i]...)
		}
		for _, r := range rs {
			out = append(out, '\\', 'u', e.hex[r>>12&0xf], e.hex[r>>8&0xf], e.hex[r>>4&0xf], e.hex[r&0xf])
		}
	}
	keep := func(b ...byte) {
		if out != nil {
			out = append(out, b...)
		}
	}
	inString := false
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case !inString:
			inString = c == '"'
			keep(c)
			i++
		case c == '"':
			inString = false
			keep(c)
			i++
		case c == '\\':
			if i+1 == len(text) {
				keep(c)
				i++
				break
			}
			// \" and \\ are the characters " and \; any other escape
			// (\n, \/, \uXXXX) stays as it is.
			if n := text[i+1]; (n == '"' || n == '\\') && strings.IndexByte(e.chars, n) >= 0 {
				put(i, rune(n))
			} else {
				keep(c, n)
			}
			i += 2
		case c < utf8.RuneSelf:
			if strings.IndexByte(e.chars, c) >= 0 {
				put(i, rune(c))
			} else {
				keep(c)
			}
			i++
		default:
			r, size := utf8.DecodeRune(text[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				keep(c) // not UTF-8: nothing to write as an escape
			case r > 0xffff:
				hi, lo := utf16.EncodeRune(r)
				put(i, hi, lo)
			default:
				put(i, r)
			}
			i += size
		}
	}
	if out == nil {
		return text, false
	}
	return out, true
}
