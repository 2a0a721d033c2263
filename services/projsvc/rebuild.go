// Package projsvc runs the read-model projections as services and implements their
// operations: rebuild by replaying the log into a shadow target, verify a rebuilt target
// against the live one, and status (checkpoint against the log's head).
package projsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections"
)

// Progress receives replay progress.
type Progress interface {
	// Start is called once with the number of facts to replay (an estimate: the log grows).
	Start(total uint64)
	// Add reports n more facts applied.
	Add(n int)
	Finish()
}

// Replayer reads the log from a sequence through an ephemeral ordered consumer, so a
// replay never adds a durable consumer to the log.
type Replayer struct {
	JS       jetstream.JetStream
	Consumer topology.Consumer
	Batch    int
	Logger   *slog.Logger
	Registry *events.Registry
	// Live makes CatchUp read all the live consumer reads, the facts replayed from its dead
	// letters included. A rebuild leaves those out: it applies their originals.
	Live bool
}

// CatchUp applies to p every fact of the consumer's filters above p's checkpoint, up to
// `until` (0: the head of the log at the time of the call), and returns the new checkpoint.
func (r Replayer) CatchUp(ctx context.Context, p projections.Projection, until uint64, prog Progress) (uint64, error) {
	if r.Batch <= 0 {
		r.Batch = 1000
	}
	if r.Registry == nil {
		r.Registry = events.Default
	}
	from, err := p.Checkpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s checkpoint: %w", p.Name(), err)
	}
	s, err := r.JS.Stream(ctx, topology.LogStream)
	if err != nil {
		return from, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return from, err
	}
	if until == 0 {
		until = info.State.LastSeq
	}
	if from >= until {
		return from, nil
	}
	var filters []string
	for _, f := range r.Consumer.Filters() {
		if r.Live || f != topology.ReplaySubject(r.Consumer.Name, ">") {
			filters = append(filters, f)
		}
	}
	oc, err := r.JS.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1,
		InactiveThreshold: logtail.InactiveThreshold,
	})
	if err != nil {
		return from, fmt.Errorf("replay consumer: %w", err)
	}
	ci, err := oc.Info(ctx)
	if err != nil {
		return from, err
	}
	if prog != nil {
		prog.Start(ci.NumPending)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(r.Batch))
	if err != nil {
		return from, err
	}
	defer it.Stop()
	last := from
	batch := make([]projections.Fact, 0, r.Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := p.Apply(ctx, batch); err != nil {
			return fmt.Errorf("apply facts %d..%d to %s: %w", batch[0].Seq, batch[len(batch)-1].Seq, p.Name(), err)
		}
		if prog != nil {
			prog.Add(len(batch))
		}
		last = batch[len(batch)-1].Seq
		batch = batch[:0]
		return nil
	}
	pending := ci.NumPending
	for pending > 0 {
		m, err := it.Next()
		if err != nil {
			return last, fmt.Errorf("replay: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return last, err
		}
		pending = meta.NumPending
		if meta.Sequence.Stream > until {
			break
		}
		ev, err := r.Registry.Decode(events.Header(m.Headers()), m.Data())
		if err != nil {
			// The live projector dead-lettered this fact too; the rebuild must match it.
			r.Logger.Warn("replay: undecodable fact skipped", "seq", meta.Sequence.Stream, "err", err)
		} else {
			batch = append(batch, projections.Fact{Seq: meta.Sequence.Stream, Event: ev})
		}
		if len(batch) >= r.Batch || pending == 0 || meta.Sequence.Stream == until {
			if err := flush(); err != nil {
				return last, err
			}
		}
		if meta.Sequence.Stream >= until {
			break
		}
	}
	if err := flush(); err != nil {
		return last, err
	}
	return last, nil
}

// Rebuild replays the whole log into a shadow of live, catches up to the head, pauses the
// live projector's consumer, catches up again, swaps the shadow in atomically and resumes.
// Interrupted, it leaves the live model untouched; running it again resumes the shadow.
func Rebuild(ctx context.Context, r Replayer, live projections.Rebuilder, prog Progress) error {
	shadow, err := live.Shadow(ctx)
	if err != nil {
		return fmt.Errorf("shadow: %w", err)
	}
	if _, err := r.CatchUp(ctx, shadow, 0, prog); err != nil {
		return err
	}
	if prog != nil {
		prog.Finish()
	}
	// An in-place shadow fences the live projector from the start (its Apply fails until
	// Swap), so a batch it holds cannot finish before the swap: waiting for it would wait
	// for ever. The fence keeps it from writing, which is what the wait is for.
	ip, inPlace := live.(projections.InPlace)
	resume, err := pauseLive(ctx, r.JS, r.Consumer.Name, r.Logger, !inPlace || !ip.InPlace())
	if err != nil {
		return err
	}
	defer resume()
	if _, err := r.CatchUp(ctx, shadow, 0, nil); err != nil {
		return err
	}
	if err := live.Swap(ctx, shadow); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	r.Logger.Info("rebuild swapped in", "projection", live.Name())
	return nil
}

// Verify rebuilds into a shadow up to the live checkpoint (with the live projector paused)
// and compares the two models' digests. It returns the differing sections; the shadow is
// dropped afterwards.
func Verify(ctx context.Context, r Replayer, live projections.Rebuilder, prog Progress) ([]string, error) {
	if ip, ok := live.(projections.InPlace); ok && ip.InPlace() {
		return verifyInPlace(ctx, r, live, prog)
	}
	shadow, err := live.Shadow(ctx)
	if err != nil {
		return nil, fmt.Errorf("shadow: %w", err)
	}
	defer func() {
		if err := live.DropShadow(context.WithoutCancel(ctx)); err != nil {
			r.Logger.Warn("drop shadow", "err", err)
		}
	}()
	resume, err := pauseLive(ctx, r.JS, r.Consumer.Name, r.Logger, true)
	if err != nil {
		return nil, err
	}
	defer resume()
	cp, err := live.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	got, err := r.CatchUp(ctx, shadow, cp, prog)
	if err != nil {
		return nil, err
	}
	if prog != nil {
		prog.Finish()
	}
	if got != cp {
		return nil, fmt.Errorf("shadow reached seq %d, live checkpoint is %d", got, cp)
	}
	a, err := live.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	b, err := shadow.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return a.Digest().Diff(b.Digest()), nil
}

// pauseLive pauses a projection's durable consumer and, with wait, waits until it has no
// batch in flight. The returned func resumes it.
func pauseLive(ctx context.Context, js jetstream.JetStream, consumer string, log *slog.Logger, wait bool) (func(), error) {
	cons, err := js.Consumer(ctx, topology.LogStream, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return func() {}, nil // no live projector has ever run
	}
	if err != nil {
		return nil, err
	}
	if _, err := js.PauseConsumer(ctx, topology.LogStream, consumer, time.Now().Add(30*time.Minute)); err != nil {
		return nil, fmt.Errorf("pause %s: %w", consumer, err)
	}
	resume := func() {
		if _, err := js.ResumeConsumer(context.WithoutCancel(ctx), topology.LogStream, consumer); err != nil {
			log.Error("resume live projector failed: run `nats consumer resume TGFLOW "+consumer+"`", "err", err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for wait {
		info, err := cons.Info(ctx)
		if err != nil {
			resume()
			return nil, err
		}
		if info.NumAckPending == 0 {
			return resume, nil
		}
		if time.Now().After(deadline) {
			resume()
			return nil, fmt.Errorf("live projector %s still has %d facts in flight after 5m", consumer, info.NumAckPending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return resume, nil
}

// Status is one projection's position.
type Status struct {
	Name       string
	Consumer   string
	Checkpoint uint64
	Head       uint64
	// Pending is how many facts of the consumer's filters are not yet applied.
	Pending uint64
	// Rate is facts applied per second over the sampling interval.
	Rate float64
	Err  error
}

// PrintStatus writes one line per status.
func PrintStatus(w io.Writer, st []Status) {
	fmt.Fprintf(w, "%-10s %-18s %12s %12s %10s %10s\n", "PROJECTION", "CONSUMER", "CHECKPOINT", "LOG HEAD", "LAG", "FACTS/S")
	for _, s := range st {
		if s.Err != nil {
			fmt.Fprintf(w, "%-10s %-18s %v\n", s.Name, s.Consumer, s.Err)
			continue
		}
		fmt.Fprintf(w, "%-10s %-18s %12d %12d %10d %10.1f\n", s.Name, s.Consumer, s.Checkpoint, s.Head, s.Pending, s.Rate)
	}
}

// StatusOf samples a projection's checkpoint twice, interval apart, against the log head
// and its consumer's pending count.
func StatusOf(ctx context.Context, js jetstream.JetStream, name, consumer string, p projections.Projection, interval time.Duration) Status {
	st := Status{Name: name, Consumer: consumer}
	s, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		st.Err = err
		return st
	}
	first, err := p.Checkpoint(ctx)
	if err != nil {
		st.Err = err
		return st
	}
	time.Sleep(interval)
	st.Checkpoint, err = p.Checkpoint(ctx)
	if err != nil {
		st.Err = err
		return st
	}
	st.Rate = float64(st.Checkpoint-first) / interval.Seconds()
	info, err := s.Info(ctx)
	if err != nil {
		st.Err = err
		return st
	}
	st.Head = info.State.LastSeq
	if c, err := js.Consumer(ctx, topology.LogStream, consumer); err == nil {
		if ci, err := c.Info(ctx); err == nil {
			st.Pending = ci.NumPending + uint64(ci.NumAckPending)
		}
	} else {
		st.Err = fmt.Errorf("consumer %s: %w (the projector has never run)", consumer, err)
	}
	return st
}

// verifyInPlace is Verify for a backend whose rebuild replaces the live model: snapshot the
// live model (projector paused), rebuild in place up to the same checkpoint, compare, and
// keep the rebuilt model live.
func verifyInPlace(ctx context.Context, r Replayer, live projections.Rebuilder, prog Progress) ([]string, error) {
	resume, err := pauseLive(ctx, r.JS, r.Consumer.Name, r.Logger, true)
	if err != nil {
		return nil, err
	}
	defer resume()
	cp, err := live.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	before, err := live.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	shadow, err := live.Shadow(ctx)
	if err != nil {
		return nil, fmt.Errorf("shadow: %w", err)
	}
	got, err := r.CatchUp(ctx, shadow, cp, prog)
	if err != nil {
		return nil, fmt.Errorf("in-place rebuild interrupted at seq %d (run verify or rebuild again to finish it): %w", got, err)
	}
	if prog != nil {
		prog.Finish()
	}
	if err := live.Swap(ctx, shadow); err != nil {
		return nil, fmt.Errorf("swap: %w", err)
	}
	after, err := live.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if got != cp {
		return nil, fmt.Errorf("rebuild reached seq %d, live checkpoint was %d", got, cp)
	}
	return before.Digest().Diff(after.Digest()), nil
}
