package benchpipe

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StageStat is what one runner (stage or projector) did over the throughput phase, from the
// runtime's own series: a projector busy for most of the wall time is the bottleneck; one
// busy for a small part of it waits for its input (or for the log between batches).
type StageStat struct {
	Name    string
	Calls   uint64        // handler calls (a projector: Apply calls)
	Busy    time.Duration // time in the handler (a projector: in Apply)
	Batches uint64        // batches pulled and processed
	Msgs    float64       // messages in those batches
}

// stageCounts reads the handler and batch series of every runner from reg.
func stageCounts(reg prometheus.Gatherer) (map[string]StageStat, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("%w: metrics: %w", ErrBench, err)
	}
	out := map[string]StageStat{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			var name string
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					name = l.GetValue()
				}
			}
			s := out[name]
			s.Name = name
			switch mf.GetName() {
			case "tgflow_stage_handler_seconds":
				s.Calls, s.Busy = h.GetSampleCount(), time.Duration(h.GetSampleSum()*float64(time.Second))
			case "tgflow_stage_batch_size":
				s.Batches, s.Msgs = h.GetSampleCount(), h.GetSampleSum()
			default:
				continue
			}
			out[name] = s
		}
	}
	return out, nil
}

// stageDiff is what each runner did between two readings, by name.
func stageDiff(before, after map[string]StageStat) []StageStat {
	var out []StageStat
	for name, a := range after {
		b := before[name]
		d := StageStat{Name: name, Calls: a.Calls - b.Calls, Busy: a.Busy - b.Busy, Batches: a.Batches - b.Batches, Msgs: a.Msgs - b.Msgs}
		if d.Calls > 0 || d.Batches > 0 {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(x, y StageStat) int { return strings.Compare(x.Name, y.Name) })
	return out
}
