package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/switchbackhq/switchback/internal/httpserve"
)

// ceilingAnswer is the bare server's answer: of the router's shape and
// size for one event, so that the two write the same bytes.
const ceilingAnswer = `{"events":[{"id":"evt_01JCEILING0000000000000000","type":"ticket"}]}` + "\n"

// ceilingLimit bounds the bodies the bare server reads, as the router's
// body limit does.
const ceilingLimit = 1 << 20

// CeilingHandler is the ceiling of a webhook endpoint on this machine: it
// reads the body to the end and answers 202, and does nothing else (no
// signature, no parse, no journal). What it costs per request is what any
// Go HTTP server costs; the router's cost is measured against it.
func CeilingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, ceilingLimit)); err != nil {
			http.Error(w, "the body could not be read", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, ceilingAnswer)
	})
}

// ceilingReady is the line ServeCeiling prints once it listens.
const ceilingReady = "switchback bench ceiling-server: listening on "

// ServeCeiling serves CeilingHandler on addr until ctx ends, with the
// timeouts the router's server has. It prints its URL on stdout first.
func ServeCeiling(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: CeilingHandler(), ReadHeaderTimeout: httpserve.MaxHeaderTimeout, IdleTimeout: httpserve.IdleTimeout}
	fmt.Fprintf(stdout, "%shttp://%s\n", ceilingReady, ln.Addr())
	return httpserve.Serve(ctx, srv, ln, slog.New(slog.DiscardHandler), nil, nil)
}
