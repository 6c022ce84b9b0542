package ingress

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	webhooks    *prometheus.CounterVec // by psa and outcome
	events      *prometheus.CounterVec // journaled events by outcome
	attempts    *prometheus.CounterVec // pipeline calls by pipeline and result
	ackLatency  prometheus.Histogram
	comparisons *prometheus.CounterVec
	stuck       prometheus.Gauge
	inFlight    prometheus.Gauge
	refused     prometheus.Counter     // reports the control service refused
	noiseProbes prometheus.Counter     // second legacy dry-runs, to learn noise
	shadowShed  *prometheus.CounterVec // comparisons shed, by reason

	journalBytes, journalEvents, journalPending, journalAge prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchback_ingress_webhooks_total",
			Help: "Webhook deliveries by PSA and outcome (accepted, duplicate, unauthenticated, malformed, too_large, unknown_partner, busy).",
		}, []string{"psa", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchback_ingress_events_total",
			Help: "Journaled events by outcome (journaled, applied, dead_lettered, duplicate, replayed).",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchback_ingress_pipeline_calls_total",
			Help: "Calls to pipelines by pipeline, mode and result (ok, error).",
		}, []string{"pipeline", "mode", "result"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchback_ingress_ack_seconds",
			Help:    "Time from a webhook's arrival to its durable acknowledgement.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1},
		}),
		comparisons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchback_ingress_comparisons_total",
			Help: "Shadow comparisons by class; skipped, shadow_error and primary_error are coverage gaps.",
		}, []string{"class"}),
		stuck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchback_ingress_stuck_events",
			Help: "Journaled events without a terminal outcome past the stuck threshold.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchback_ingress_events_in_flight",
			Help: "Events handed to the delivery workers and not yet finished.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_ingress_reports_refused_total",
			Help: "Reports the control service refused (4xx); their counts stay owed and are sent again.",
		}),
		noiseProbes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_ingress_noise_probes_total",
			Help: "Second dry-runs of the legacy pipeline on sampled events, to learn which fields differ between two legacy runs (noise).",
		}),
		shadowShed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchback_ingress_shadow_shed_total",
			Help: "Comparisons shed, each counted as skipped: reason contended (the router's CPU was, and the event was outside the shadow's share) or queue_full (the shadow workers fell ShadowQueue behind).",
		}, []string{"reason"}),
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	m.journalBytes = gauge("switchback_journal_size_bytes", "Size of the router's journal file.")
	m.journalEvents = gauge("switchback_journal_events", "Events in the journal, within retention.")
	m.journalPending = gauge("switchback_journal_pending_events", "Journaled events without a terminal outcome.")
	m.journalAge = gauge("switchback_journal_oldest_event_age_seconds", "Age of the oldest event in the journal.")
	reg.MustRegister(m.webhooks, m.events, m.attempts, m.ackLatency, m.comparisons, m.stuck, m.inFlight, m.refused, m.noiseProbes, m.shadowShed)
	return m
}
