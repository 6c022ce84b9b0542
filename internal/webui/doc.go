// Package webui serves switchback's web UI: the dashboard, cohorts with
// their gate reports, partners, routers, the audit log and replays, with the
// global revert, per-migration revert and resume, cohort advance, change
// requests, and each migration's autopilot with its pause and resume.
//
// Pages are rendered on the server with html/template from the files that
// package web embeds; a small script adds confirmation dialogs, the partner
// filter and live updates (it polls /ui/state.json and re-renders the parts
// of the page marked data-live when the state changes).
//
// A browser signs in by exchanging an API token for a session (GET
// /login?token=T or the login form). The session cookie holds a random id
// only: the token's name and role stay on the server, which checks on every
// request that the token still exists, so revoking a token ends its
// sessions. Every change is a POST that must come from the UI's own origin
// (Sec-Fetch-Site / Origin) and carry the session's CSRF token, and needs
// the same role as the API endpoint that makes the same change. Changes go
// through control.Service with the token's name as the actor, so they are
// audited exactly like API calls.
package webui
