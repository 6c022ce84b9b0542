package httpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve serves until ctx ends, runs closing (which ends the
// requests that never end by themselves), shuts the server down
// gracefully, then runs after (the ingress's own shutdown). Either may be
// nil.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger, closing func(), after func() error) error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-done:
	case <-ctx.Done():
	}
	log.Info("shutting down")
	if closing != nil {
		closing()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if serveErr == nil {
		serveErr = <-done
	}
	var afterErr error
	if after != nil {
		afterErr = after()
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, shutErr, afterErr)
}
