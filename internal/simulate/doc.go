// Package simulate sends realistic PSA webhook traffic to an ingress router:
// for each configured partner, the deliveries its PSA kind sends, with that
// PSA's payload shape and signature scheme, as internal/psa verifies them.
//
//   - connectwise: Manage callbacks {MessageId, FromUrl, CompanyId, MemberId,
//     Action (added, updated, deleted), Type (ticket, schedule, time, company,
//     contact), ID, Entity (the record as an escaped JSON string, null on
//     delete), Metadata.key_url, CallbackObjectRecId}, signed with
//     x-content-signature: base64 HMAC-SHA256 of the body keyed by the SHA-256
//     of the partner's signing key (Partner.Secret, which must not be empty:
//     the simulator never fetches Metadata.key_url).
//   - autotask: {Action (Create, Update, Delete), Guid (one webhook per entity
//     type), EntityType (Ticket, ServiceCall, TimeEntry, Company, Contact),
//     Id, Fields (the subscribed ones; on update only those that changed),
//     EventTime, SequenceNumber, PersonID}, signed with X-Hook-Signature:
//     "sha1=" and the base64 HMAC-SHA1 of the body keyed by the secret.
//   - halopsa: event objects {id, webhook_id, notification_id, escmsg_id,
//     event ("New Ticket Logged", "Ticket Updated", "Appointment Deleted"…),
//     message, object_id, agent_id, timestamp, and the object under its name}
//     with the Authorization header of "basic:USER:PASSWORD" or
//     "bearer:TOKEN"; about one delivery in five is a batch (a JSON array) of
//     two to four events.
//   - generic: Standard Webhooks {type: "<entity>.<action>", timestamp,
//     data: {id, …}} with webhook-id, webhook-timestamp and webhook-signature
//     (v1, HMAC-SHA256 keyed by the decoded "whsec_" secret), re-signed with
//     a fresh timestamp on every try.
//
// # Traffic
//
// Entities are tickets, schedule entries, time entries, companies and
// contacts, picked by Config.Mix. Each partner has, per entity type, a small
// pool of live entities (a few that existed before the run, then those the
// run creates, at most 16 at once), so that updates and deletes hit the same
// records again and again; entity ids are never reused within a partner.
// Deliveries are paced at Config.Rate overall and spread evenly over the
// partners; Config.Burst adds back-to-back bulk edits by one partner.
//
// A share Config.Duplicates of deliveries is sent a second time a few
// deliveries later, exactly as the PSA resends it: the same body and the
// same delivery id (for the generic kind the same webhook-id, re-signed with
// the time of the resend). A 429 answer is retried after its Retry-After
// (capped by Config.MaxRetryWait), and so is a delivery that got no answer,
// up to Config.Retries times; any other answer is final.
//
// Deliveries of one partner are sent one at a time, in the order they were
// generated, as one PSA tenant's webhook queue sends them, so the router sees
// each entity's changes in order; Config.Concurrency partners send at once.
//
// # Outages and the PSAs' change APIs
//
// A share Config.Drop of deliveries, picked by the seed apart from the
// rest of the traffic, is never sent, as a PSA outage loses webhooks: the
// same seed makes the same changes whatever the share, and a dropped
// delivery's resend is dropped too. Stats.Dropped counts them and
// Stats.DroppedChanges lists their events with the stamp each would have
// carried, marked Detectable when a reconciliation can find it missing.
//
// The PSA makes each change before it sends (or drops) its webhook: a
// ChangeAPI given as Config.ChangeAPI is told every change then, dropped
// or not, and serves each partner's change API as internal/psaapi reads
// it (ConnectWise, Autotask and HaloPSA tickets, every entity of a generic
// feed), with the stamp the router reads in the change's webhook as the
// entity's updatedAt, under /psa/PARTNER. See ChangeAPI for the routes and
// the credentials. A delivery drained unsent when the run ends was never
// made at the PSA either.
//
// # Determinism
//
// Everything the simulator decides comes from Config.Seed: which partner,
// entity type, entity and action each delivery carries, its field values,
// which deliveries are batched, resent or part of a burst, and the delivery
// ids that are not hashes (ConnectWise MessageId, webhook-id, Halo and
// Autotask GUIDs). Timestamps (EventTime, Halo's timestamp, webhook-timestamp,
// _info.lastUpdated) are the real time, so the hashed delivery ids of
// Autotask and HaloPSA differ from run to run. Two runs with the same seed
// and configuration that send the same number of deliveries produce the same
// Stats.Ledger and Stats.DroppedChanges but for those delivery ids and the
// stamps.
//
// # Ledger
//
// Stats.Ledger lists each event the router acknowledged (202), once, in the
// order the simulator generated them: partner, entity type and action as the
// router canonicalizes them ("ticket", "schedule_entry", "time_entry",
// "company", "contact"; "created", "updated", "deleted"), entity id as the
// router reads it, and the delivery id the router dedups on (for Autotask
// and HaloPSA the documented "h:" hash). A batched Halo delivery gives one
// entry per event; an acknowledged resend adds nothing new. A delivery that
// got no answer (a transport error, or Run stopped by its context) is not in
// the ledger although the router may have journaled it, so a pipeline that
// loses nothing holds at least every ledger entry.
//
// # Bounds
//
// Deliveries go to Config.URL + "/hooks/" + partner id and nowhere else:
// redirects are not followed and Metadata.key_url is never fetched. A run
// stops after Config.Count deliveries, after Config.Duration (30 s when
// neither is set, at most 24 h), or when its context ends; no delivery
// starts after that, and one in progress ends with its current try, which
// Config.Timeout bounds (the context's end cancels it at once).
//
// # The command's side
//
// LoadPartners and ParseMix read the partners and the mix as "switchback
// simulate" takes them; WriteReport prints a run's counts and WriteLedger
// saves its ledger.
package simulate
