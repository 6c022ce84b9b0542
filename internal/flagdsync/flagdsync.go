package flagdsync

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"buf.build/gen/go/open-feature/flagd/grpc/go/flagd/sync/v1/syncv1grpc"
	syncv1 "buf.build/gen/go/open-feature/flagd/protocolbuffers/go/flagd/sync/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/flagd"
)

// SelectorHeader is the gRPC metadata key of flagd's selector; it wins
// over the deprecated selector field of the requests.
const SelectorHeader = "flagd-selector"

// stopTimeout bounds a graceful stop: calls still under way then are cut.
const stopTimeout = 5 * time.Second

// Source is what the sync service needs of the control service.
type Source interface {
	// Changed returns the current snapshot and a channel closed when a
	// newer one is published, or when the source becomes stale.
	Changed() (*flags.Snapshot, <-chan struct{})
	// Available returns an error while the source serves a state that
	// may be behind its store's (a replica cut off from etcd).
	Available() error
	// CatchUp brings the source up to its store's latest state.
	CatchUp(ctx context.Context) error
}

// ControlSource is the Source of a control service.
func ControlSource(svc *control.Service) Source { return controlSource{svc} }

type controlSource struct{ svc *control.Service }

func (c controlSource) Changed() (*flags.Snapshot, <-chan struct{}) {
	st, ch := c.svc.Changed()
	return st.Flags(), ch
}
func (c controlSource) Available() error                  { return c.svc.Available() }
func (c controlSource) CatchUp(ctx context.Context) error { return c.svc.CatchUp(ctx) }

// Server is the flag sync service.
type Server struct {
	syncv1grpc.UnimplementedFlagSyncServiceServer
	src       Source
	log       *slog.Logger
	cache     flagd.Cache
	streams   prometheus.Gauge
	closing   chan struct{}
	closeOnce sync.Once
}

var _ syncv1grpc.FlagSyncServiceServer = (*Server)(nil)

// New returns the sync service of src. Its gauge of open streams is
// registered with reg when reg is not nil.
func New(src Source, log *slog.Logger, reg prometheus.Registerer) *Server {
	s := &Server{src: src, log: log, closing: make(chan struct{}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchback_flagd_sync_streams",
			Help: "flagd providers and daemons connected to the flagd sync service (SyncFlags streams)."})}
	if reg != nil {
		reg.MustRegister(s.streams)
	}
	return s
}

// Close ends every SyncFlags stream, so that a graceful stop need not wait
// for them.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// SyncFlags sends the selected configuration, then again on every new
// snapshot version, until the client leaves, the server closes, or the
// source becomes stale (Unavailable: the client reconnects, to another
// replica behind a balancer). A client that falls behind skips to the
// newest version.
func (s *Server) SyncFlags(req *syncv1.SyncFlagsRequest, stream grpc.ServerStreamingServer[syncv1.SyncFlagsResponse]) error {
	ctx := stream.Context()
	selector := selectorOf(ctx, req.GetSelector())
	if err := flagd.CheckSelector(selector); err != nil {
		return s.status("SyncFlags", err)
	}
	if err := s.ready(ctx); err != nil {
		return s.status("SyncFlags", err)
	}
	s.streams.Inc()
	defer s.streams.Dec()
	s.log.Debug("flagd sync stream opened", "selector", selector, "providerId", req.GetProviderId(), "peer", peerOf(ctx))
	var sent *flags.Snapshot
	for {
		snap, changed := s.src.Changed()
		if snap != sent {
			doc, err := s.cache.Get(snap, selector)
			if err != nil {
				return s.status("SyncFlags", err)
			}
			if err := stream.Send(&syncv1.SyncFlagsResponse{FlagConfiguration: string(doc.JSON)}); err != nil {
				return nil // the client is gone
			}
			sent = snap
		}
		select {
		case <-changed:
			if err := s.src.Available(); err != nil {
				return s.status("SyncFlags", err)
			}
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return status.Error(codes.Unavailable, "switchback is shutting down: reconnect")
		}
	}
}

// FetchAllFlags answers the selected configuration once.
func (s *Server) FetchAllFlags(ctx context.Context, req *syncv1.FetchAllFlagsRequest) (*syncv1.FetchAllFlagsResponse, error) {
	selector := selectorOf(ctx, req.GetSelector())
	if err := s.ready(ctx); err != nil {
		return nil, s.status("FetchAllFlags", err)
	}
	snap, _ := s.src.Changed()
	doc, err := s.cache.Get(snap, selector)
	if err != nil {
		return nil, s.status("FetchAllFlags", err)
	}
	return &syncv1.FetchAllFlagsResponse{FlagConfiguration: string(doc.JSON)}, nil
}

// GetMetadata answers the flag set's metadata (the protocol deprecates
// the call; old flagd daemons still make it).
func (s *Server) GetMetadata(ctx context.Context, _ *syncv1.GetMetadataRequest) (*syncv1.GetMetadataResponse, error) {
	if err := s.ready(ctx); err != nil {
		return nil, s.status("GetMetadata", err)
	}
	snap, _ := s.src.Changed()
	if snap == nil {
		return nil, s.status("GetMetadata", domain.Errorf(domain.CodeStoreUnavailable, "the control service has not loaded its store yet: try again"))
	}
	md, err := structpb.NewStruct(flagd.SetMetadata(snap))
	if err != nil {
		return nil, s.status("GetMetadata", domain.Internal("flag set metadata", err))
	}
	return &syncv1.GetMetadataResponse{Metadata: md}, nil
}

// ready refuses a client while the source is stale, and otherwise brings
// it up to its store first: a client moving here from another replica
// must not get an older version than it held.
func (s *Server) ready(ctx context.Context) error {
	if err := s.src.Available(); err != nil {
		return err
	}
	return s.src.CatchUp(ctx)
}

// selectorOf returns the client's selector: flagd's header, else the
// request's field.
func selectorOf(ctx context.Context, field string) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(SelectorHeader); len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return field
}

// status converts err into a gRPC status; an internal cause is logged
// here, once, and never sent.
func (s *Server) status(call string, err error) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		de = domain.Internal(call, err)
	}
	switch de.Code {
	case domain.CodeInvalid:
		return status.Error(codes.InvalidArgument, de.Message)
	case domain.CodeStoreUnavailable:
		return status.Error(codes.Unavailable, de.Message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	s.log.Error("flagd sync call failed", "call", call, "err", err)
	return status.Error(codes.Internal, "internal error")
}

// Serve serves the sync service on ln, over TLS when tlsConfig is not
// nil, until ctx ends; then it ends the streams and stops gracefully,
// cutting calls still under way after a few seconds. It returns the
// server's error, nil after a stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	opts := []grpc.ServerOption{
		// flagd's providers ping every 30 s, even between streams; the
		// default policy (5 min) would answer them with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Find clients that vanished without closing their stream.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	}
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	g := grpc.NewServer(opts...)
	syncv1grpc.RegisterFlagSyncServiceServer(g, s)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	s.Close()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
		g.Stop()
		<-stopped
	}
	<-done
	return nil
}

// peerOf names the client's address, for the logs.
func peerOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
