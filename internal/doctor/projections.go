package doctor

import (
	"context"

	"github.com/tgflow/tgflow/nats/topology"
)

// Projection is a read model's checkpoint against the log head and its consumer.
type Projection struct {
	Consumer string `json:"consumer"`
	// Configured: a checkpoint reader was given (the model's database is configured here).
	Configured bool   `json:"configured"`
	Checkpoint uint64 `json:"checkpoint"`
	Head       uint64 `json:"log_head"`
	AckFloor   uint64 `json:"ack_floor"`
	Pending    uint64 `json:"pending"`
	// ConsumerExists: the projection's consumer is on the log (else ack floor and pending are 0).
	ConsumerExists bool   `json:"consumer_exists"`
	Err            string `json:"error,omitempty"`
}

func (d *doctor) projections(ctx context.Context) error {
	var head uint64
	for _, s := range d.r.Streams {
		if s.Name == topology.LogStream {
			head = s.LastSeq
		}
	}
	for _, c := range topology.Consumers() {
		if c.Kind != topology.KindProjection {
			continue
		}
		p := Projection{Consumer: c.Name, Head: head}
		if ci := d.infos[c.Name]; ci != nil {
			p.AckFloor, p.Pending, p.ConsumerExists = ci.AckFloor.Stream, ci.NumPending, true
		}
		read := d.o.Checkpoints[c.Name]
		if read != nil {
			p.Configured = true
			cp, err := read(ctx)
			switch {
			case err != nil:
				p.Err = err.Error()
				d.problem(SeverityFail, "projection", c.Name, "checkpoint cannot be read: %v", err)
			case cp < p.AckFloor:
				p.Checkpoint = cp
				// The design rules this out (the checkpoint is written with the rows, facts are
				// acked after): a model restored from an older backup, or another schema.
				d.problem(SeverityFail, "projection", c.Name, "checkpoint %d is behind its consumer's ack floor %d: the model lacks facts the consumer acknowledged (restart the projector: it replays them)", cp, p.AckFloor)
			default:
				p.Checkpoint = cp
			}
		}
		d.r.Projections = append(d.r.Projections, p)
	}
	return nil
}
