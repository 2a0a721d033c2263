package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/internal/promx"
)

// metrics are ingest's own series, next to the stage runtime's.
type metrics struct {
	runs     *prometheus.CounterVec
	failures *prometheus.CounterVec
	posts    *prometheus.CounterVec
	skipped  *prometheus.CounterVec
	resolves prometheus.Counter
	// duplicates counts facts the log acknowledged as already present (same Nats-Msg-Id
	// within the duplicate window): ingest re-published something it had published
	// before. It stays 0 unless a run was interrupted between a publish and its record.
	duplicates prometheus.Counter
}

// newMetrics registers on reg; a nil reg keeps the series unregistered (tests, tools). A
// series another ingest service of the same process registered first is shared with it;
// any other registration error is returned.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "channel_runs_total",
			Help: "Channel runs that ended with channels.synced."}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "channel_failures_total",
			Help: "Channel runs that ended with channels.failed, by class (transient, channel, flood), and auth: the session is unusable and ingest stopped."}, []string{"class"}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "facts_total",
			Help: "Post and album facts published (parsed, edited, deleted, metrics, album)."}, []string{"fact"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "skipped_total",
			Help: "Messages and media not kept, by reason (service message, too large, policy: sticker, …)."}, []string{"reason"}),
		resolves: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "resolves_total",
			Help: "contacts.resolveUsername calls (each username is resolved once)."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tgflow", Subsystem: "ingest", Name: "duplicates_total",
			Help: "Facts the log already had (dropped by Nats-Msg-Id): ingest published them again after an interrupted run."}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.runs, err = promx.Register(reg, m.runs); err != nil {
		return nil, err
	}
	if m.failures, err = promx.Register(reg, m.failures); err != nil {
		return nil, err
	}
	if m.posts, err = promx.Register(reg, m.posts); err != nil {
		return nil, err
	}
	if m.skipped, err = promx.Register(reg, m.skipped); err != nil {
		return nil, err
	}
	if m.resolves, err = promx.Register(reg, m.resolves); err != nil {
		return nil, err
	}
	if m.duplicates, err = promx.Register(reg, m.duplicates); err != nil {
		return nil, err
	}
	return m, nil
}
