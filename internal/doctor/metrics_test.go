package doctor_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgflow/tgflow/internal/doctor"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
)

// The collector exports what doctor finds, at each scrape: a dead tagger with 3 pending, the
// log head, the channel's posts; an unreachable server is tgflow_doctor_up 0.
func TestCollectorExportsTheFindings(t *testing.T) {
	env := natstest.Start(t)
	applyConsumer(t, env.JS, topology.ConsumerTagger)
	publishAll(t, env.JS, parsed(1, 1, "a"), parsed(1, 2, "b"), parsed(1, 3, "c"))
	th := thresholds(func(th *doctor.Thresholds) { th.DeadAfter = 0 })
	c := doctor.NewCollector(env.JS, doctor.Options{Expected: []string{topology.ConsumerTagger}, Thresholds: th}, 2*time.Second, logx.Discard())
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	want := map[string]float64{
		`tgflow_doctor_up`:                                      1,
		`tgflow_doctor_healthy`:                                 0,
		`tgflow_consumer_pending{consumer="tagger"}`:            3,
		`tgflow_consumer_state{consumer="tagger",state="dead"}`: 1,
		`tgflow_stream_last_seq{stream="TGFLOW"}`:               3,
		`tgflow_channel_posts{channel="1"}`:                     3,
	}
	got := scrape(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "tgflow_consumer_state"); err != nil || n != len(topology.Consumers()) {
		t.Errorf("%d consumer states (%v), want one per declared consumer", n, err)
	}
	env.Server.Stop()
	if got := scrape(t, reg); got["tgflow_doctor_up"] != 0 || len(got) != 1 {
		t.Errorf("server gone: %v, want only tgflow_doctor_up 0", got)
	}
}

// scrape returns every sample as name{labels} → value.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			if len(m.GetLabel()) > 0 {
				key += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						key += ","
					}
					key += l.GetName() + `="` + l.GetValue() + `"`
				}
				key += "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}
