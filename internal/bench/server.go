package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/httpserve"
)

// Server is a control service on loopback, seeded for a benchmark.
type Server struct {
	URL        string
	AdminToken string
	Svc        *control.Service
	Migration  string
	Partners   []string
	close      func()
}

// Close stops the server.
func (s *Server) Close() { s.close() }

// StartServer starts a control service on 127.0.0.1 with its data in dir,
// one migration and the given number of partners, a quarter at each stage.
func StartServer(ctx context.Context, dir string, partners int) (*Server, error) {
	store, err := boltstore.Open(filepath.Join(dir, "switchback.db"), time.Second)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	svc, err := control.New(ctx, store, control.Options{Logger: log})
	if err != nil {
		store.Close()
		return nil, err
	}
	s := &Server{Svc: svc, Migration: "psa-webhooks-v2"}
	if err := s.seed(ctx, partners); err != nil {
		store.Close()
		return nil, err
	}
	api := httpapi.New(svc, log, prometheus.NewRegistry())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		store.Close()
		return nil, err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: httpserve.MaxHeaderTimeout}
	srv.RegisterOnShutdown(api.Close)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	s.URL = "http://" + ln.Addr().String()
	s.close = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
		store.Close()
	}
	return s, nil
}

// StartTempServer starts a server as StartServer does, with its data in a
// temporary directory that Close removes. Its errors are StartServer's and
// the temporary directory's.
func StartTempServer(ctx context.Context, partners int) (*Server, error) {
	dir, err := os.MkdirTemp("", "switchback-bench-")
	if err != nil {
		return nil, err
	}
	s, err := StartServer(ctx, dir, partners)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := s.close
	s.close = func() {
		stop()
		os.RemoveAll(dir)
	}
	return s, nil
}

func (s *Server) seed(ctx context.Context, partners int) error {
	c := control.Change{Actor: "bench", Reason: "seed"}
	secret, _, err := s.Svc.Bootstrap(ctx, "")
	if err != nil {
		return err
	}
	s.AdminToken = secret
	m := domain.Migration{Key: s.Migration, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://127.0.0.1:9/legacy"}, New: domain.Pipeline{URL: "http://127.0.0.1:9/new"}}}
	if _, _, err := s.Svc.PutMigration(ctx, c, m); err != nil {
		return err
	}
	stages := []domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}
	for i := range partners {
		id := fmt.Sprintf("partner-%05d", i)
		if _, _, err := s.Svc.PutPartner(ctx, c, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric}); err != nil {
			return err
		}
		for st := domain.StageLegacy; st != stages[i%4]; {
			st, _ = st.Next()
			if _, err := s.Svc.SetStage(ctx, c, s.Migration, id, st, true); err != nil {
				return err
			}
		}
		s.Partners = append(s.Partners, id)
	}
	return nil
}

// Token creates a token of role for the benchmark's clients.
func (s *Server) Token(ctx context.Context, name string, role domain.Role) (string, error) {
	_, secret, err := s.Svc.CreateToken(ctx, control.Change{Actor: "bench"}, name, role)
	return secret, err
}
