// Package psaapi asks partners' PSAs, through their REST APIs, which
// entities changed in a window: the evidence a reconciliation holds
// against what the pipelines applied (issue 14). It is the one place that
// knows the vendors' change APIs; nothing else calls them. A Source is made
// by New from a Config, whose credentials are never printed: not by
// String, GoString, Format or LogValue, not in any error. A partner's
// Config is FromPartner's, from its psaApi (domain.PSAAPI): the one rule
// of which fields each PSA takes, which the control service applies when
// an admin sets them.
//
// # The window and what a Source reports
//
// Changes reports the entities whose last change, as the PSA records it
// now, is in [since, until): half-open, so that successive windows tile
// without overlap or hole. The three vendors keep only an entity's
// latest change time: an entity changed in the window and again after
// until is not reported by a window that ends in the past. A window that
// ends now (a reconciliation "from 2h") is not affected. The bounds are
// applied by the client to the timestamp the PSA returns, whatever the
// server did with the filter, so a vendor that ignores or rounds a filter
// costs pages, never correctness; the filters sent are never narrower
// than the window. The timestamps are the PSA's clock: a reconciliation
// must allow for its skew against switchback's (the rule is the
// reconciliation's; this package only reports the PSA's times, in UTC).
// Entity types: "ticket" for the three vendors (changed tickets only); the
// feed's own type for generic. An entity may be reported twice; the
// caller keeps the last.
//
// Every request is retried on 429, 502, 503, 504 and transport errors, at
// most 6 attempts, waiting Retry-After (seconds or an HTTP date, at most
// 2 minutes, a longer one ends the request) or else a capped exponential
// backoff with jitter (0.5 s doubling to 30 s, half of it random), always
// within ctx. 401 and 403 are ErrCredentialsRefused at once (HaloPSA
// first renews its token once). Pages are bounded by MaxPageBytes.
// Redirects are not followed, so credentials go to BaseURL's host only.
//
// # ConnectWise PSA (Manage), REST API 3.0
//
// Docs: https://developer.connectwise.com/Products/ConnectWise_PSA/REST
// (the developer network; sign-in needed), its pagination and conditions
// guides, and https://developer.connectwise.com/ClientID.
//
//	GET {site}/v4_6_release/apis/3.0/service/tickets
//	    ?conditions=lastUpdated>=[2026-12-03T10:00:00Z]&orderBy=id asc&page=N&pageSize=1000
//	Authorization: Basic base64(companyId+publicKey:privateKey)
//	clientId: {clientId}
//
// The answer is a JSON array of tickets; a page shorter than pageSize is
// the last. A ticket's change time is _info.lastUpdated, UTC, whole
// seconds; the condition takes whole seconds, so since is truncated to the
// second (a superset). Only the lower bound is sent and the order is by
// id: a ticket changed while the pages are read keeps matching the
// condition and keeps its place, so later pages do not shift (a ticket
// deleted meanwhile can still shift them by one; forward-only pagination
// would remove that). Page 2 answering page 1's body again is ErrCursorLoop.
// Rate limits: ConnectWise throttles busy integrations with 429 (and 503
// under load), and the client waits as above.
//
// # Autotask (Datto) REST API v1.0
//
// Docs:
// https://ww1.autotask.net/help/DeveloperHelp/Content/APIs/REST/API_Calls/REST_Basic_Query_Calls.htm,
// …/REST_Advanced_Query_Features.htm (paging) and
// …/APIs/REST/General_Topics/REST_Thresholds_Limits.htm.
//
//	GET {zone}/v1.0/Tickets/query?search={"filter":[
//	    {"op":"gte","field":"lastActivityDate","value":since},
//	    {"op":"lt","field":"lastActivityDate","value":until}]}
//	UserName: {username}  Secret: {secret}  ApiIntegrationCode: {integrationCode}
//
// The zone URL is the user's (ZoneInformation gives it), e.g.
// https://webservices5.autotask.net/atservicesrest. The answer is
// {"items": [...], "pageDetails": {"count", "requestCount", "prevPageUrl",
// "nextPageUrl"}}, at most 500 items; the client follows nextPageUrl
// until it is null. A next page URL on another host is ErrMalformed (the
// headers carry the secret); one given before is ErrCursorLoop. The change
// time is lastActivityDate, which the REST API returns in UTC. Autotask
// allows 10,000 requests an hour per database and slows answers near the
// limit; past it requests are refused until the hour rolls.
//
// # HaloPSA REST API
//
// Docs: the API reference each instance serves at
// https://{instance}/apidoc (Swagger), with its Authorisation section.
// It was not reachable from where this was written: the names below
// agree with public client libraries and references, and the client
// filters by the timestamp it reads, so a filter Halo ignored would cost
// pages, not correctness.
//
//	POST {instance}/auth/token[?tenant=T]   (application/x-www-form-urlencoded)
//	     grant_type=client_credentials&client_id=…&client_secret=…&scope=all
//	GET  {instance}/api/Tickets?pageinate=true&page_size=100&page_no=N
//	     &order=id&orderdesc=false&datesearch=lastupdate&startdate=since-1s
//	Authorization: Bearer {access_token}
//
// The token answer is {"access_token", "token_type": "Bearer",
// "expires_in"}; a token is renewed a minute before it expires and once
// when an API call answers 401. A token request refused with 400
// (OAuth2's invalid_client) is ErrCredentialsRefused too. The tickets
// answer is {"page_no", "page_size", "record_count", "tickets": [...]};
// the last page is the short one, or the one that reaches record_count.
// The change time is last_update (lastactiondate when a ticket has
// none), UTC, written without a zone. startdate is sent a second early:
// Halo's date search takes whole seconds and does not document whether it
// is inclusive. Repeated pages are ErrCursorLoop.
//
// # generic: switchback's change-feed contract
//
//	GET {baseUrl}?since=RFC3339[&cursor=C]
//	Authorization: Bearer {token}
//	→ {"changes": [{"type": "ticket", "id": "123", "updatedAt": "RFC3339", "data": {…}}],
//	   "next": "C2" | null}
//
// since is inclusive; the feed has no upper bound, so the client reads to
// the end (next null) and keeps [since, until). The decoder's rules are
// decodeGenericPage's. A cursor given before is ErrCursorLoop. A
// Standard Webhooks sender that wants reconciliation serves this.
package psaapi
