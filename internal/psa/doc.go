// Package psa verifies and parses the webhooks that partners' PSAs send to
// the ingress router: ConnectWise Manage callbacks, Autotask webhooks,
// HaloPSA webhooks and the generic Standard Webhooks scheme. Decoder.Decode
// turns one delivery into Envelopes (one per event) or a *domain.Error whose
// code says why; internal/httperr maps the code to the HTTP status to answer.
// UpdatedAt reads, from one event's payload, when the PSA last updated its
// entity, by the PSA's clock: what the reconciliation compares with the
// PSA's change API (internal/reconcile).
//
// Verification always comes first: a delivery that is unsigned, wrongly
// signed, or whose partner has no usable secret is refused with 401 and
// nothing of it is parsed; only an authentic delivery that cannot be read
// is refused with 400. Every comparison of a signature or a credential is
// constant-time. Messages never hold a secret, a signature or a credential.
//
// # Secrets, per PSA kind
//
//   - "generic": "whsec_" and the standard base64 of the key bytes (the
//     prefix may be left out, as the Standard Webhooks libraries allow).
//   - "connectwise": the callback's signing key as ConnectWise gives it, or
//     "" to fetch it from the callback's Metadata.key_url with the
//     Decoder's KeyCache (see KeyCache for the key endpoint's answer).
//   - "autotask": the webhook's secret key, as a string.
//   - "halopsa": the credentials the Halo webhook is configured to send,
//     "basic:USER:PASSWORD" (the password may hold colons, the user may
//     not) or "bearer:TOKEN". The "basic"/"bearer" prefix is
//     case-insensitive.
//
// # generic (Standard Webhooks)
//
// Headers webhook-id, webhook-timestamp (Unix seconds, at most 5 minutes
// from the Decoder's clock either way) and webhook-signature, a
// space-separated list of "v1,BASE64(HMAC-SHA256(key, id.timestamp.body))";
// any v1 signature may match and other versions are ignored. The body is
//
//	{"type": "ticket.updated", "timestamp": "…", "data": {"id": "12345", …}}
//
// The entity type is what stands before the last dot of type (ticket or
// tickets, schedule_entry, schedule or scheduleentry, time_entry or
// timeentry, company, contact; else unknown), the action what follows it,
// the entity id data.id (a string or a number). DeliveryID is webhook-id,
// which may be at most 256 bytes (a longer one is refused with 400).
//
// # connectwise
//
// Header x-content-signature: the base64 HMAC-SHA256 of the raw body, keyed
// by the SHA-256 of the signing key's bytes. The body's Type (ticket,
// schedule, time or timeentry, company, contact; else unknown), Action
// (added, updated, deleted → created, updated, deleted) and ID are
// required; Entity (the record as an escaped JSON string, null on delete)
// is left in the payload. DeliveryID is MessageId; without one, the hash of
// CompanyId, Type, Action, ID, FromUrl and the body.
//
// When the partner configures no key, the key is fetched from
// Metadata.key_url, which is read from the body before it is verified; the
// URL must pass the KeyCache's allow-list before anything is fetched. Such a
// key proves that ConnectWise signed the callback, not which ConnectWise
// tenant it is for. A partner bound to its company (Partner.CompanyID, with
// DecodePartner) takes a verified callback only when its CompanyId, or
// without one its ProductInstanceId, is that company, regardless of case:
// else 401 with domain.CodeWrongCompany, or domain.CodeMissingCompany when it names none.
//
// # autotask
//
// Header X-Hook-Signature: "sha1=" and the base64 HMAC-SHA1 of the raw body
// keyed by the secret, or of an escaped form of the body: Autotask signs
// its body with some characters of its strings written as \uXXXX escapes
// while it sends them literally. Inside strings, & < > ' " \ + and every
// non-ASCII character (as UTF-16: surrogate pairs beyond the BMP) become
// \uXXXX with lower-case hex; or, as .NET's System.Text.Json writes it,
// & < > ' " + ` and non-ASCII with upper-case hex, \\ left as it is. Other
// escapes already in the body stay. Each form is compared in constant time.
//
// The body's EntityType (Ticket, Contact, Account or Company, TimeEntry,
// ServiceCall; else unknown, e.g. TicketNote), Action (Create, Update,
// Delete → created, updated, deleted) and Id are required;
// Fields stays in the payload. Autotask has no delivery id and resends the
// same content on retry, so DeliveryID is the hash of Guid, EntityType, Id,
// Action, SequenceNumber and EventTime; the webhook's Guid with the event's
// SequenceNumber names one event. When either is missing, the body joins
// the hash: nothing else tells two changes of one record apart.
//
// # halopsa
//
// HaloPSA signs nothing: its webhooks send the Basic or Bearer credentials
// configured on them, and the Authorization header is compared with the
// partner's (the decoded user:password for Basic). A delivery is one JSON
// object, or a JSON array of them when the webhook batches; each array item
// becomes one Envelope, with that item as its Payload, and one unreadable
// item refuses the whole delivery. An event object holds:
//
//	{
//	  "id": "8e25bc7b-…",            // the event's GUID
//	  "webhook_id": "53232637-…",    // or "webhookid"
//	  "notification_id": 41,
//	  "escmsg_id": "a726ee11-…",
//	  "event": "New Ticket Logged",  // or "event_name", "eventname"; required
//	  "message": "…",
//	  "object_id": 4242,             // or "objectid"; required, see below
//	  "timestamp": "2026-09-25T06:41:08.7895915Z",
//	  "ticket": {"id": 4242, …}      // the object, full or small, or absent
//	}
//
// Names match regardless of case. The entity id is object_id; failing
// that, the "id" of the object named after the event's entity ("ticket",
// "client"…) or of "object"; failing that, ticket_id. Halo sends no entity
// type, so SourceType is the event name, and the entity type comes from its
// first word (words split at anything but letters and digits, so
// "ticket_status_changed" reads as "ticket status changed") that names one: ticket; appointment (schedule_entry);
// timesheet (time_entry); client, customer or company (company); user or
// contact (contact); words such as action, note, asset, site or invoice
// name an unknown entity, so "Action Added to Ticket" is about an action,
// not a ticket. The action comes from the event's first word among new,
// logged, created, added (created), updated, changed, edited, modified
// (updated), deleted, removed (deleted); failing those, it is the event's
// other words lower-cased ("Ticket Reassigned" → "reassigned"). DeliveryID
// is the hash of webhook_id, the event name, the entity id and the
// timestamp, or without a timestamp escmsg_id, or without either the
// event's id; when the event has none of these three, the event itself (the
// body, or the batch item) joins the hash.
//
// # DeliveryID hashes
//
// "h:" and the hex SHA-256 of the PSA kind and the fields named above, in
// that order, each preceded by its length in bytes as a uvarint (numbers as
// their JSON text, absent fields empty). Where the body joins the hash, the
// last field is the hex SHA-256 of the body's bytes as received (for a
// HaloPSA event, of the event's JSON text, surrounding whitespace aside), so
// that only a byte-identical resend of a delivery without the PSA's own
// identity is a duplicate: a dedup key never merges two different
// deliveries. Partners are kept apart by the caller, which dedups per
// partner. The encoding is pinned by tests: changing it would let a resend
// across the change be applied twice.
package psa
