package psa

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/switchbackhq/switchback/internal/domain"
)

// haloNouns maps the words of a HaloPSA event name that name what it is
// about to canonical entity types. The first such word in the event wins,
// so "Action Added to Ticket" is about an action (unknown), not a ticket.
var haloNouns = map[string]string{
	"ticket": EntityTicket, "tickets": EntityTicket,
	"appointment": EntityScheduleEntry, "appointments": EntityScheduleEntry,
	"timesheet": EntityTimeEntry, "timesheets": EntityTimeEntry,
	"client": EntityCompany, "clients": EntityCompany,
	"customer": EntityCompany, "customers": EntityCompany,
	"company": EntityCompany, "companies": EntityCompany,
	"user": EntityContact, "users": EntityContact,
	"contact": EntityContact, "contacts": EntityContact,

	"action": EntityUnknown, "actions": EntityUnknown,
	"note": EntityUnknown, "notes": EntityUnknown,
	"asset": EntityUnknown, "assets": EntityUnknown,
	"site": EntityUnknown, "sites": EntityUnknown,
	"agent": EntityUnknown, "agents": EntityUnknown,
	"invoice": EntityUnknown, "invoices": EntityUnknown,
	"contract": EntityUnknown, "contracts": EntityUnknown,
	"opportunity": EntityUnknown, "opportunities": EntityUnknown,
	"project": EntityUnknown, "projects": EntityUnknown,
	"quote": EntityUnknown, "quotes": EntityUnknown,
	"supplier": EntityUnknown, "suppliers": EntityUnknown,
	"item": EntityUnknown, "items": EntityUnknown,
	"attachment": EntityUnknown, "attachments": EntityUnknown,
}

// haloVerbs maps the words of a HaloPSA event name that say what happened
// to canonical actions; the first such word wins.
var haloVerbs = map[string]string{
	"new": ActionCreated, "logged": ActionCreated, "created": ActionCreated,
	"create": ActionCreated, "added": ActionCreated, "add": ActionCreated,
	"updated": ActionUpdated, "update": ActionUpdated, "changed": ActionUpdated,
	"edited": ActionUpdated, "modified": ActionUpdated,
	"deleted": ActionDeleted, "delete": ActionDeleted, "removed": ActionDeleted,
}

// haloItem is the part of one HaloPSA webhook event the router reads, with
// the variants of each field it accepts (encoding/json also matches names
// regardless of case). The object itself ("ticket", "client"… in full or
// small form) stays in the payload.
type haloItem struct {
	ID           json.RawMessage `json:"id"`
	WebhookID    json.RawMessage `json:"webhook_id"`
	WebhookIDAlt json.RawMessage `json:"webhookid"`
	Event        string          `json:"event"`
	EventName    string          `json:"event_name"`
	EventNameAlt string          `json:"eventname"`
	ObjectID     json.RawMessage `json:"object_id"`
	ObjectIDAlt  json.RawMessage `json:"objectid"`
	TicketID     json.RawMessage `json:"ticket_id"`
	Timestamp    json.RawMessage `json:"timestamp"`
	EscMsgID     json.RawMessage `json:"escmsg_id"`
}

func decodeHalo(secret string, h http.Header, body []byte) ([]Envelope, *domain.Error) {
	if e := verifyHalo(secret, h); e != nil {
		return nil, e
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, malformed("the body is empty")
	}
	if trimmed[0] != '[' {
		env, e := haloEnvelope(trimmed)
		if e != nil {
			return nil, e
		}
		env.Payload = clone(body)
		return []Envelope{env}, nil
	}
	// A batched delivery: one envelope per item, all or none, so that a
	// delivery is never half journaled.
	var items []json.RawMessage
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return nil, malformed("the body is not a JSON array of HaloPSA events")
	}
	if len(items) == 0 {
		return nil, malformed("the batch holds no events")
	}
	envs := make([]Envelope, len(items))
	for i, raw := range items {
		env, e := haloEnvelope(raw)
		if e != nil {
			e.Message = "batch item " + strconv.Itoa(i) + ": " + e.Message
			return nil, e
		}
		env.Payload = raw // already a copy, made by json.Unmarshal
		envs[i] = env
	}
	return envs, nil
}

// haloEnvelope reads one event, without its Payload.
func haloEnvelope(raw []byte) (Envelope, *domain.Error) {
	if len(raw) == 0 || raw[0] != '{' {
		return Envelope{}, malformed("the event is not a JSON object")
	}
	var it haloItem
	if err := json.Unmarshal(raw, &it); err != nil {
		return Envelope{}, malformed("the event is not a HaloPSA webhook JSON object")
	}
	event := firstNonBlank(it.Event, it.EventName, it.EventNameAlt)
	if event == "" {
		return Envelope{}, malformed(`the event has no "event" name`)
	}
	ent, noun, act := haloEventName(event)
	eid, ok := scalarString(it.ObjectID)
	if !ok {
		eid, ok = scalarString(it.ObjectIDAlt)
	}
	if !ok {
		eid, ok = nestedID(raw, noun, "object")
	}
	if !ok {
		eid, ok = scalarString(it.TicketID)
	}
	if !ok {
		return Envelope{}, malformed(`the event has no "object_id"`)
	}
	webhook := optString(it.WebhookID)
	if webhook == "" {
		webhook = optString(it.WebhookIDAlt)
	}
	// Halo sends no sequence number. The timestamp, when sent, tells two
	// occurrences of one event on one object apart; without it the queue
	// message id, then the event's own id, stand in for it. Without any of
	// them, two different updates of one object would share every field of
	// the hash, so the event's own text joins it: only a byte-identical
	// resend is then a duplicate.
	fields := []string{webhook, event, eid, firstNonBlank(optString(it.Timestamp), optString(it.EscMsgID), optString(it.ID))}
	if fields[3] == "" {
		fields = append(fields, bodyHash(raw))
	}
	return Envelope{
		EntityType: ent,
		SourceType: event,
		Action:     act,
		EntityID:   eid,
		DeliveryID: deliveryHash(KindHaloPSA, fields...),
	}, nil
}

// haloEventName reads an event name such as "New Ticket Logged": its
// entity type and the noun that gave it (from the first word in haloNouns),
// and its action (from the first word in haloVerbs; failing that, the
// event's other words, lower-cased).
func haloEventName(event string) (ent, noun, act string) {
	words := strings.FieldsFunc(strings.ToLower(event), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	ent, nounAt := EntityUnknown, -1
	for i, w := range words {
		if e, ok := haloNouns[w]; ok {
			ent, noun, nounAt = e, w, i
			break
		}
	}
	for _, w := range words {
		if a, ok := haloVerbs[w]; ok {
			return ent, noun, a
		}
	}
	rest := make([]string, 0, len(words))
	for i, w := range words {
		if i != nounAt {
			rest = append(rest, w)
		}
	}
	if len(rest) == 0 {
		rest = words
	}
	act = strings.Join(rest, " ")
	if act == "" {
		act = strings.ToLower(strings.TrimSpace(event))
	}
	return ent, noun, act
}

// nestedID returns the "id" of the first of the named objects in the event
// (the full or small object Halo sends under the entity's name).
func nestedID(raw []byte, names ...string) (string, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return "", false
	}
	for _, name := range names {
		if name == "" {
			continue
		}
		for k, v := range fields {
			if !strings.EqualFold(k, name) {
				continue
			}
			var obj struct {
				ID json.RawMessage `json:"id"`
			}
			if bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) && json.Unmarshal(v, &obj) == nil {
				if id, ok := scalarString(obj.ID); ok {
					return id, true
				}
			}
		}
	}
	return "", false
}

// verifyHalo checks the Authorization header against the configured
// credentials, "basic:USER:PASSWORD" or "bearer:TOKEN".
func verifyHalo(secret string, h http.Header) *domain.Error {
	if secret == "" {
		return unauthorized(domain.CodeNoSecret, "no HaloPSA webhook credentials are configured for this partner")
	}
	kind, cred, _ := strings.Cut(secret, ":")
	var scheme string
	switch strings.ToLower(kind) {
	case "basic":
		if user, _, ok := strings.Cut(cred, ":"); !ok || user == "" {
			return unauthorized(domain.CodeInvalidSecret, `the partner's HaloPSA credentials are not "basic:USER:PASSWORD"`)
		}
		scheme = "Basic"
	case "bearer":
		if cred == "" {
			return unauthorized(domain.CodeInvalidSecret, `the partner's HaloPSA credentials are not "bearer:TOKEN"`)
		}
		scheme = "Bearer"
	default:
		return unauthorized(domain.CodeInvalidSecret, `the partner's HaloPSA credentials are neither "basic:USER:PASSWORD" nor "bearer:TOKEN"`)
	}

	auth := strings.TrimSpace(h.Get("Authorization"))
	if auth == "" {
		return unauthorized(domain.CodeMissingCredentials, "the Authorization header is missing")
	}
	gotScheme, got, _ := strings.Cut(auth, " ")
	got = strings.TrimSpace(got)
	if scheme == "Basic" {
		// Compare the decoded user:password, so that padding or its absence
		// in the sender's base64 makes no difference.
		dec, err := base64.StdEncoding.DecodeString(got)
		if err != nil {
			dec, err = base64.RawStdEncoding.DecodeString(got)
		}
		if err != nil {
			// Not dec: on error it holds what decoded before the fault.
			return unauthorized(domain.CodeBadCredentials, "the Authorization header does not match the webhook's credentials")
		}
		got = string(dec)
	}
	// Hash both sides so that the comparison takes the same time whatever
	// the lengths, then compare in constant time.
	gh, wh := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(cred))
	match := subtle.ConstantTimeCompare(gh[:], wh[:])
	if !strings.EqualFold(gotScheme, scheme) || match != 1 {
		return unauthorized(domain.CodeBadCredentials, "the Authorization header does not match the webhook's credentials")
	}
	return nil
}

func firstNonBlank(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}
