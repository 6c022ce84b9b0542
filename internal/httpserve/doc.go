// Package httpserve owns how switchback's processes serve HTTP, apart from
// what they serve: the read timeout that answers a trickled body 408 with
// the error envelope of internal/httperr (WithReadTimeout), the listener
// of serve over TLS that keeps a plain loopback side for the embedded
// router (Listen), and the graceful shutdown every process runs (Serve).
package httpserve
