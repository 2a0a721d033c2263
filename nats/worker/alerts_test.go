package worker_test

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

// Every alert rule must refer to a metric that a running stage really exports: the old
// system's alerts watched metrics that nothing set.
func TestAlertRulesReferToExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile("../../docs/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	referenced := map[string]bool{}
	for _, m := range regexp.MustCompile(`tgflow_[a-z_]+`).FindAllString(string(rules), -1) {
		referenced[m] = true
	}
	if len(referenced) == 0 {
		t.Fatal("no tgflow metric referenced by the alert rules")
	}

	h := newHarness(t)
	// A projector's series are created at zero when it is built.
	c, _ := topology.LookupConsumer(topology.ConsumerProjPostgres)
	if _, err := worker.NewProjector(h.env.JS, worker.Config{Consumer: c.Config(), Metrics: h.metrics, Logger: logx.Discard()}, &flakyModel{}); err != nil {
		t.Fatal(err)
	}
	publish(t, h.env.JS, parsed(1, 1, "x"))
	h.start(t, h.config(testConsumer()), tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return tagOf(in, p), nil
	}))
	natstest.Eventually(t, 10*time.Second, "processed", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	classes := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" {
					classes[l.GetValue()] = true
				}
			}
		}
		if f.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+suffix] = true
			}
		}
	}
	for m := range referenced {
		if !exported[m] {
			t.Errorf("alert rule refers to %s, which no stage exports", m)
		}
	}
	// A class label an alert selects must be one a runner exports (e.g. a projection's "bug").
	for _, m := range regexp.MustCompile(`class="([a-z]+)"`).FindAllStringSubmatch(string(rules), -1) {
		if !classes[m[1]] {
			t.Errorf("alert rule selects class %q, which no runner exports", m[1])
		}
	}
}
