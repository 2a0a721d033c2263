package worker

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// breakers are the circuit breakers of this process by name, for tgflow_breaker_state: a
// breaker is built by a service, which has no reason to know the metrics; the series is read
// from the breakers themselves at each scrape. A second breaker with a name replaces the
// first (one series per name).
var breakers = struct {
	sync.Mutex
	byName map[string]*Breaker
}{byName: map[string]*Breaker{}}

func trackBreaker(b *Breaker) {
	breakers.Lock()
	defer breakers.Unlock()
	breakers.byName[b.Name()] = b
}

var descBreakerState = prometheus.NewDesc("tgflow_breaker_state",
	"Circuit breaker of a provider: 0 closed (calls go through), 1 half-open (trial calls), 2 open (calls refused, inputs held).", []string{"breaker"}, nil)

// breakerCollector exports the state of every breaker of the process.
type breakerCollector struct{}

func (breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descBreakerState }

func (breakerCollector) Collect(ch chan<- prometheus.Metric) {
	breakers.Lock()
	defer breakers.Unlock()
	for name, b := range breakers.byName {
		ch <- prometheus.MustNewConstMetric(descBreakerState, prometheus.GaugeValue, float64(b.State()), name)
	}
}
