package natstier

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	lag, unacked  *prometheus.GaugeVec // by shard
	waiting       *prometheus.GaugeVec // by shard
	redeliveries  prometheus.Counter
	alreadyDone   prometheus.Counter
	takeOvers     prometheus.Counter
	replayTakes   prometheus.Counter
	poison        prometheus.Counter
	outcomeErrors prometheus.Counter
	publishErrors *prometheus.CounterVec // by kind
	shardsHeld    prometheus.Gauge
	shardsGiven   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, t *Tier) *metrics {
	m := &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchback_tier_lag_messages",
			Help: "Messages of a shard of the tier's stream not yet handed to a router, read every 2 s.",
		}, []string{"shard"}),
		unacked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchback_tier_unacked_messages",
			Help: "Messages of a shard handed to a router and not yet acknowledged (their outcome not yet recorded), read every 2 s.",
		}, []string{"shard"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchback_tier_oldest_waiting_seconds",
			Help: "How long the oldest message of a shard not yet handed to any router has waited, read every 2 s: 0 when none waits. Events the tier holds but no router delivers show here on every router.",
		}, []string{"shard"}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_tier_redeliveries_total",
			Help: "Messages this router was handed again: a router died or gave them back, or one went unacknowledged past AckWait.",
		}),
		alreadyDone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_tier_already_done_total",
			Help: "Messages handed out again, or copied from a router's journal with their outcome (journal copy), whose outcome the tier already held: acknowledged without a delivery.",
		}),
		takeOvers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_tier_takeovers_total",
			Help: "Shards this router began to deliver, each time reading first what the shard's last router left unacknowledged.",
		}),
		replayTakes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_tier_replay_takeovers_total",
			Help: "Replays this router took over from a router that stopped renewing its claim, to run them again from the start.",
		}),
		poison: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_tier_foreign_messages_total",
			Help: "Messages in the stream that are not switchback events: terminated, never delivered.",
		}),
		outcomeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_tier_outcome_errors_total",
			Help: "Outcomes the tier's bucket did not take; their events are handed out again and recorded then.",
		}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchback_tier_publish_errors_total",
			Help: "Deliveries the tier's stream did not take (answered 429), by kind: full, unavailable, timeout, other.",
		}, []string{"kind"}),
		shardsHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchback_tier_shards_held",
			Help: "Shards pinned to this router (it delivers their events), read every second.",
		}),
		shardsGiven: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchback_tier_shards_given_total",
			Help: "Shards this router gave away, holding more than its share of the tier's shards, once it had delivered what it held of each.",
		}),
	}
	reg.MustRegister(m.lag, m.unacked, m.waiting, m.redeliveries, m.alreadyDone, m.takeOvers, m.replayTakes, m.poison, m.outcomeErrors, m.publishErrors,
		m.shardsHeld, m.shardsGiven,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchback_tier_held_messages",
			Help: "Messages this router holds: taken into its journal, their outcome not yet recorded.",
		}, func() float64 {
			t.mu.Lock()
			defer t.mu.Unlock()
			return float64(len(t.held))
		}))
	return m
}
