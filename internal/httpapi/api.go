package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/flagd"
)

// API is the control service's HTTP API.
type API struct {
	svc         *control.Service
	log         *slog.Logger
	reg         *prometheus.Registry
	metrics     *httpMetrics
	subscribers prometheus.Gauge
	router      *mux.Router
	opts        options
	closing     chan struct{}
	closeOnce   sync.Once
	// flagd holds GET /v1/flagd/flags.json's documents of the current
	// snapshot, encoded once per version.
	flagd flagd.Cache
}

type options struct {
	Heartbeat          time.Duration
	StreamWriteTimeout time.Duration
	Ingress            Ingress
	Reconciler         Reconciler
	Notifications      Notifications
}

// Option changes a setting of the API.
type Option func(*options)

// WithHeartbeat sets how often an idle snapshot stream sends a heartbeat
// comment; the default is 15 s.
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.Heartbeat = d } }

// WithStreamWriteTimeout sets how long one write to a stream subscriber may
// take before the subscription is dropped; the default is 10 s.
func WithStreamWriteTimeout(d time.Duration) Option {
	return func(o *options) { o.StreamWriteTimeout = d }
}

// principal is the authenticated caller.
type principal struct {
	name string
	role domain.Role
}

func (p principal) change(reason string) control.Change {
	return control.Change{Actor: p.name, Reason: reason}
}

// handlerFunc is an endpoint: it writes its answer, or returns an error
// that the API writes.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p principal) error

// New returns the API of svc. Its metrics, and reg's other collectors, are
// served at /metrics.
func New(svc *control.Service, log *slog.Logger, reg *prometheus.Registry, opts ...Option) *API {
	a := &API{svc: svc, log: log, reg: reg, router: mux.NewRouter(), closing: make(chan struct{}),
		opts: options{Heartbeat: 15 * time.Second, StreamWriteTimeout: 10 * time.Second}}
	for _, o := range opts {
		o(&a.opts)
	}
	a.metrics = newHTTPMetrics(reg)
	a.subscribers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchback_snapshot_stream_subscribers", Help: "Clients connected to the snapshot stream."})
	reg.MustRegister(stateCollector{svc}, a.subscribers)
	a.routes()
	return a
}

// Close ends every snapshot stream, so that a server's graceful shutdown
// need not wait for them; register it with http.Server.RegisterOnShutdown.
func (a *API) Close() {
	a.closeOnce.Do(func() { close(a.closing) })
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

// Router returns the router so that other parts (ingress, UI) can add
// routes beside the API's.
func (a *API) Router() *mux.Router { return a.router }

func (a *API) routes() {
	r := a.router
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, a.log, domain.Errorf(domain.CodeNotFound, "no endpoint %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, a.log, &domain.Error{Code: domain.CodeMethodNotAllowed, Message: "method " + req.Method + " is not allowed on " + req.URL.Path})
	})
	r.Handle("/healthz", a.open("healthz", a.healthz)).Methods(http.MethodGet)
	r.Handle("/readyz", a.open("readyz", a.readyz)).Methods(http.MethodGet)
	r.Handle("/metrics", a.metrics.instrument("metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))).Methods(http.MethodGet)

	for _, rt := range a.endpoints() {
		r.Handle(rt.path, a.authed(rt.name, rt.role, rt.h)).Methods(rt.method)
	}
}

// endpoint is one authenticated route.
type endpoint struct {
	method, path, name string
	role               domain.Role
	h                  handlerFunc
}

// endpoints lists every authenticated route with the role it needs.
func (a *API) endpoints() []endpoint {
	const (
		viewer, operator, admin, router = domain.RoleViewer, domain.RoleOperator, domain.RoleAdmin, domain.RoleRouter
		get, put, post, del             = http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete
		mig                             = "/v1/migrations/{key}"
	)
	return []endpoint{
		{post, "/v1/tokens", "tokens.create", admin, a.createToken},
		{get, "/v1/tokens", "tokens.list", admin, a.listTokens},
		{del, "/v1/tokens/{name}", "tokens.revoke", admin, a.deleteToken},
		{put, "/v1/partners/{id}", "partners.put", admin, a.putPartner},
		{get, "/v1/partners", "partners.list", viewer, a.listPartners},
		{get, "/v1/partners/{id}", "partners.get", viewer, a.getPartner},
		{put, mig, "migrations.put", admin, a.putMigration},
		{get, "/v1/migrations", "migrations.list", viewer, a.listMigrations},
		{get, mig, "migrations.get", viewer, a.getMigration},
		{put, mig + "/partners/{id}", "stages.put", operator, a.putStage},
		{get, mig + "/partners", "stages.list", viewer, a.listStages},
		{get, mig + "/partners/{id}/comparisons", "comparisons", viewer, a.comparisons},
		{get, mig + "/partners/{id}/noise", "noise", viewer, a.noise},
		{put, mig + "/noise", "noise.pin", operator, a.pinNoise},
		{get, "/v1/noise/learned", "noise.learned", router, a.learnedNoise},
		{put, mig + "/cohorts/{name}", "cohorts.put", admin, a.putCohort},
		{get, mig + "/cohorts", "cohorts.list", viewer, a.listCohorts},
		{get, mig + "/cohorts/{name}/gate", "cohorts.gate", viewer, a.gate},
		{post, mig + "/cohorts/{name}/advance", "cohorts.advance", operator, a.advance},
		{post, mig + "/revert", "migrations.revert", operator, a.revert},
		{post, mig + "/resume", "migrations.resume", operator, a.resume},
		{get, mig + "/autopilot", "autopilot.get", viewer, a.autopilot},
		{post, mig + "/autopilot/pause", "autopilot.pause", operator, a.pauseAutopilot},
		{post, mig + "/autopilot/resume", "autopilot.resume", operator, a.resumeAutopilot},
		{post, "/v1/revert", "revert.all", operator, a.revertAll},
		{post, "/v1/evaluate", "evaluate", viewer, a.evaluate},
		{get, "/v1/snapshot", "snapshot", viewer, a.snapshot},
		{get, "/v1/snapshot/stream", "snapshot.stream", viewer, a.stream},
		{get, "/v1/flagd/flags.json", "flagd.flags", viewer, a.flagdFlags},
		{post, "/v1/reports", "reports", router, a.report},
		{get, "/v1/routers", "routers", viewer, a.listRouters},
		{post, "/ofrep/v1/evaluate/flags/{key}", "ofrep.evaluate", viewer, a.ofrepEvaluate},
		{post, "/ofrep/v1/evaluate/flags", "ofrep.bulk", viewer, a.ofrepBulk},
		{get, "/v1/audit", "audit", viewer, a.auditLog},
		{get, "/v1/audit/head", "audit_head", viewer, a.auditHead},
		{post, "/v1/replays", "replays.start", operator, a.startReplay},
		{get, "/v1/replays", "replays.list", viewer, a.listReplays},
		{get, "/v1/replays/asked", "replays.asked", router, a.askedReplays},
		{get, "/v1/replays/{id}", "replays.get", viewer, a.getReplay},
		{get, "/v1/events", "events", viewer, a.listEvents},
		{post, "/v1/reconciliations", "reconciliations.start", operator, a.startReconciliation},
		{get, "/v1/reconciliations", "reconciliations.list", viewer, a.listReconciliations},
		{get, "/v1/reconciliations/{id}", "reconciliations.get", viewer, a.getReconciliation},
		{post, "/v1/reconciliations/{id}/backfill", "reconciliations.backfill", operator, a.backfill},
		{get, "/v1/changes", "changes.list", viewer, a.listChanges},
		{get, "/v1/changes/{id}", "changes.get", viewer, a.getChange},
		{post, "/v1/changes/{id}/approve", "changes.approve", operator, a.approveChange},
		{post, "/v1/changes/{id}/reject", "changes.reject", operator, a.rejectChange},
		{put, "/v1/notifications/{name}", "notifications.put", admin, a.putNotification},
		{get, "/v1/notifications", "notifications.list", admin, a.listNotifications},
		{get, "/v1/notifications/{name}", "notifications.get", admin, a.getNotification},
		{del, "/v1/notifications/{name}", "notifications.delete", admin, a.deleteNotification},
		{post, "/v1/notifications/{name}/test", "notifications.test", admin, a.testNotification},
	}
}

// open wraps an endpoint that needs no token.
func (a *API) open(name string, h handlerFunc) http.Handler {
	return a.metrics.instrument(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r, principal{}); err != nil {
			writeError(w, r, a.log, err)
		}
	}))
}

// authed wraps an endpoint that needs a token of role need.
func (a *API) authed(name string, need domain.Role, h handlerFunc) http.Handler {
	return a.metrics.instrument(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err == nil && !p.role.Allows(need) {
			err = domain.Errorf(domain.CodePermissionDenied, "this needs the %s role; the token %q has %s", need, p.name, p.role)
		}
		if err == nil {
			a.markStale(w)
			err = h(w, r, p)
		}
		if err != nil {
			writeError(w, r, a.log, err)
		}
	}))
}

// markStale tells the client, on a replica that cannot reach its shared
// store, that the answer comes from the last state it had: it may be
// behind what other replicas have written since.
func (a *API) markStale(w http.ResponseWriter) {
	if since, stale := a.svc.Stale(); stale {
		w.Header().Set("Switchback-Stale-Since", since.Format(time.RFC3339))
	}
}

// authenticate reads the bearer token of r.
func (a *API) authenticate(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" && r.Header.Get("X-API-Key") != "" {
		// OFREP clients may send the token as an API key instead.
		h = "Bearer " + r.Header.Get("X-API-Key")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		return principal{}, domain.Errorf(domain.CodeUnauthenticated, "send a token as Authorization: Bearer TOKEN (or X-API-Key: TOKEN)")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return principal{}, domain.Errorf(domain.CodeUnauthenticated, "the Authorization header must be Bearer TOKEN")
	}
	t, err := a.svc.Authenticate(strings.TrimSpace(secret))
	if err != nil {
		return principal{}, err
	}
	return principal{name: t.Name, role: t.Role}, nil
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request, _ principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ principal) error {
	st := a.svc.State()
	if st == nil || st.Flags() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		return nil
	}
	if since, stale := a.svc.Stale(); stale {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "store_unreachable", "since": since, "snapshotVersion": st.Version})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "snapshotVersion": st.Version})
	return nil
}
