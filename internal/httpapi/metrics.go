package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/control"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchback_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchback_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts and times h under the route name, which keeps the
// label set bounded whatever paths clients send.
func (m *httpMetrics) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

// stateCollector reports the published state at scrape time.
type stateCollector struct{ svc *control.Service }

var (
	descVersion  = prometheus.NewDesc("switchback_snapshot_version", "The current snapshot version.", nil, nil)
	descPartners = prometheus.NewDesc("switchback_partners", "Partners by migration and stage.", []string{"migration", "stage"}, nil)
	descReverted = prometheus.NewDesc("switchback_migration_reverted", "1 while a migration's kill switch is on.", []string{"migration"}, nil)
	descReverts  = prometheus.NewDesc("switchback_reverts_total", "Kill switches turned on since start.", nil, nil)
	descRegress  = prometheus.NewDesc("switchback_snapshot_regressions_total",
		"Times since start a router held a later snapshot version of this store than the store had (it was restored from a backup?): each time the version was moved past it.", nil, nil)
	descStale = prometheus.NewDesc("switchback_store_stale_seconds",
		"How long this replica has not reached its shared store (etcd); 0 while it does, and always with bbolt.", nil, nil)
)

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descVersion
	ch <- descPartners
	ch <- descReverted
	ch <- descReverts
	ch <- descRegress
	ch <- descStale
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.svc.State()
	ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, float64(st.Version))
	ch <- prometheus.MustNewConstMetric(descReverts, prometheus.CounterValue, float64(c.svc.Reverts()))
	regressions, _ := c.svc.Regressions()
	ch <- prometheus.MustNewConstMetric(descRegress, prometheus.CounterValue, float64(regressions))
	stale := 0.0
	if since, ok := c.svc.Stale(); ok {
		stale = time.Since(since).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descStale, prometheus.GaugeValue, stale)
	for _, key := range st.MigrationKeys() {
		ms := st.Migrations[key]
		reverted := 0.0
		if ms.Reverted {
			reverted = 1
		}
		ch <- prometheus.MustNewConstMetric(descReverted, prometheus.GaugeValue, reverted, key)
		for stage, n := range st.PartnersByStage(ms) {
			ch <- prometheus.MustNewConstMetric(descPartners, prometheus.GaugeValue, float64(n), key, string(stage))
		}
	}
}
