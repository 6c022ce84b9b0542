// Package ingress is the router: it takes partners' webhooks, verifies
// them, journals them durably before acknowledging, and delivers each event
// through the pipeline that the migration flag picks for its partner,
// retrying until a terminal outcome. It replays journaled events on
// request, and reports what it holds to the control service.
package ingress
