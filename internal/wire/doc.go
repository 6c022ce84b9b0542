// Package wire holds the JSON contracts that the control service and its
// routers both speak, declared once: the snapshot the control service
// publishes (GET /v1/snapshot and its stream), the report a router posts
// (POST /v1/reports) and the journal events the API lists
// (GET /v1/events), the reconciliations, the notification targets
// with their deliveries (GET /v1/notifications) and the bodies posted to
// them, and an autopilot's status (GET /v1/migrations/{key}/autopilot). docs/api.md documents each field; the golden files
// under testdata pin the bytes.
//
// Both ends use these types, so a router needs this package and the
// domain, not the control service. The public flags package keeps its own
// copy of the fields it decodes and sends, because it may import nothing
// internal; a test here checks that the two agree byte for byte.
package wire
