package doctor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tgflow/tgflow/nats/worker"
)

// DLQGroup counts the dead letters of one consumer and class.
type DLQGroup struct {
	Consumer string    `json:"consumer"`
	Class    string    `json:"class"`
	Count    int       `json:"count"`
	Oldest   time.Time `json:"oldest,omitzero"`
	Newest   time.Time `json:"newest,omitzero"`
}

// DLQ is the dead-letter stream's depth, by consumer and class.
type DLQ struct {
	Total  int        `json:"total"`
	Groups []DLQGroup `json:"groups"`
}

func (d *doctor) dlq(ctx context.Context) error {
	dls, err := worker.ListDeadLetters(ctx, d.js, "", 0)
	if err != nil {
		return fmt.Errorf("read the DLQ: %w", err)
	}
	groups := map[[2]string]*DLQGroup{}
	for _, dl := range dls {
		k := [2]string{dl.Consumer, string(dl.Class)}
		g := groups[k]
		if g == nil {
			g = &DLQGroup{Consumer: dl.Consumer, Class: string(dl.Class)}
			groups[k] = g
		}
		g.Count++
		if !dl.Time.IsZero() && (g.Oldest.IsZero() || dl.Time.Before(g.Oldest)) {
			g.Oldest = dl.Time
		}
		if dl.Time.After(g.Newest) {
			g.Newest = dl.Time
		}
	}
	d.r.DLQ.Total = len(dls)
	d.r.DLQ.Groups = []DLQGroup{}
	for _, g := range groups {
		d.r.DLQ.Groups = append(d.r.DLQ.Groups, *g)
	}
	slices.SortFunc(d.r.DLQ.Groups, func(a, b DLQGroup) int {
		return cmp.Or(cmp.Compare(a.Consumer, b.Consumer), cmp.Compare(a.Class, b.Class))
	})
	if len(dls) > d.th.DLQMax {
		for _, g := range d.r.DLQ.Groups {
			d.problem(SeverityFail, "dlq", g.Consumer, "%d dead letter(s) of class %s, newest %s (`tgflow dlq ls --consumer %s`)",
				g.Count, g.Class, g.Newest.Format(time.RFC3339), g.Consumer)
		}
	}
	return nil
}
