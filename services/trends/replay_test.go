package trends_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/trends"
)

func factEvent(p *events.PostTagged) events.Event {
	return events.New(events.ProducerTagger, p, p.PostedAt, fmt.Sprint(p.Version), fmt.Sprint(p.Revision))
}

func publishAll(t *testing.T, pub *publish.Publisher, evs []events.Event) {
	t.Helper()
	for len(evs) > 0 {
		n := min(len(evs), 200)
		if _, err := pub.Publish(context.Background(), evs[:n]); err != nil {
			t.Fatal(err)
		}
		evs = evs[n:]
	}
}

// TestReplayFromColdStartMatchesLiveRun: a long-running machine handles the first part of
// the scenario and its facts and trends reach the log; a machine started cold replays the
// log (ReplayStart, Replay with an ordered consumer by start time) and then finds exactly
// the trends the long-running machine finds in the rest.
func TestReplayFromColdStartMatchesLiveRun(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	facts := scenario(t, rand.Uint64())
	// Restart just after the fact that reveals the middle trend of the scenario: its burst
	// goes on, and only the cooldown restored from the log holds it.
	var triggers []int
	probe := machine(t, trends.Config{})
	for i, f := range facts {
		if len(probe.Observe(f)) > 0 {
			triggers = append(triggers, i)
		}
	}
	if len(triggers) < 3 {
		t.Fatalf("the scenario has %d trends", len(triggers))
	}
	restart := triggers[len(triggers)/2] + 1
	live := machine(t, trends.Config{})
	var logged []events.Event
	var want []*events.TrendDetected
	for i, f := range facts {
		in := factEvent(f)
		out, err := live.Handle(ctx, in, f)
		if err != nil {
			t.Fatal(err)
		}
		if i < restart {
			logged = append(logged, in)
			logged = append(logged, out...)
			continue
		}
		for _, ev := range out {
			want = append(want, ev.Data.(*events.TrendDetected))
		}
	}
	if len(want) == 0 {
		t.Fatal("no trend after the restart point: nothing to compare")
	}
	publishAll(t, pub, logged)

	cold := machine(t, trends.Config{})
	// The scenario's post dates are in the past, so the replay starts a look-back before
	// the newest of them; every fact was stored now, after it.
	from, err := trends.ReplayStart(ctx, env.JS, cold, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if wantFrom := facts[restart-1].PostedAt.Add(-cold.Lookback()); !from.Equal(wantFrom) {
		t.Errorf("replay start %s, want the last post date less the look-back, %s", from, wantFrom)
	}
	st, err := trends.Replay(ctx, env.JS, cold, from, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Facts != restart || st.Undecodable != 0 {
		t.Errorf("replayed %+v, want %d facts", st, restart)
	}
	t.Logf("replayed %+v; %d trends to find after it", st, len(want))
	var got []*events.TrendDetected
	for _, f := range facts[restart:] {
		got = append(got, cold.Observe(f)...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cold start found %v, the long-running machine %v", tagsOf(got), tagsOf(want))
	}
}

// TestReplayReadsFromTheStartTimeUpToASequence: facts stored before the start time are not
// read, nor those after the sequence given.
func TestReplayReadsFromTheStartTimeUpToASequence(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after []events.Event
	for i := range 5 {
		before = append(before, factEvent(tagged(1, t0.Add(time.Duration(i)*time.Minute), "a")))
		after = append(after, factEvent(tagged(2, t0.Add(time.Duration(i)*time.Minute), "b")))
	}
	publishAll(t, pub, before)
	from := time.Now()
	natstest.Eventually(t, time.Second, "the clock to move", func() bool { return time.Now().After(from) })
	publishAll(t, pub, after)

	tests := []struct {
		name  string
		upTo  uint64
		facts int
	}{
		{name: "to the end", upTo: 0, facts: 5},
		{name: "up to a sequence", upTo: 7, facts: 2}, // sequences 6 and 7
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, trends.Config{})
			st, err := trends.Replay(ctx, env.JS, m, from, tc.upTo, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Facts != tc.facts {
				t.Errorf("replayed %d facts, want %d", st.Facts, tc.facts)
			}
		})
	}
}

// TestRebuildStopsAtTheAckFloor: the start replays what the trends consumer has acked and
// leaves the rest to its deliveries; without the consumer it replays nothing.
func TestRebuildStopsAtTheAckFloor(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for i := range 10 {
		evs = append(evs, factEvent(tagged(events.ChannelID(1+i%3), t0.Add(time.Duration(i)*time.Minute), "a")))
	}
	publishAll(t, pub, evs)

	m := machine(t, trends.Config{})
	st, err := trends.Rebuild(ctx, env.JS, m, topology.ConsumerTrends, time.Now(), nil)
	if err != nil || st.Facts != 0 {
		t.Fatalf("without the consumer: %+v, %v; want nothing replayed", st, err)
	}

	spec, ok := topology.LookupConsumer(topology.ConsumerTrends)
	if !ok {
		t.Fatal("no trends consumer in the topology")
	}
	cons, err := env.JS.CreateOrUpdateConsumer(ctx, topology.LogStream, spec.Config())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for msg := range batch.Messages() {
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	if acked != 4 {
		t.Fatalf("acked %d, want 4", acked)
	}
	st, err = trends.Rebuild(ctx, env.JS, m, topology.ConsumerTrends, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Facts != 4 || st.LastSeq != 10 {
		t.Errorf("replayed %+v, want the 4 acked facts (and the log read to its end for trends)", st)
	}
}

// TestRebuildFromColdStartMatchesLiveRun: the stage stops after the trend a post revealed
// reached the log but before that post was acked (the trend lies past the ack floor). A
// machine rebuilt cold by Rebuild, then handed what the consumer delivers again, publishes
// exactly the trends the long-running machine published after that point: the cooldown of
// the trend past the floor is restored by the library, so the redelivered post finds
// nothing new and the burst going on is not detected a second time.
func TestRebuildFromColdStartMatchesLiveRun(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	facts := scenario(t, seed)
	var triggers []int
	probe := machine(t, trends.Config{})
	for i, f := range facts {
		if len(probe.Observe(f)) > 0 {
			triggers = append(triggers, i)
		}
	}
	if len(triggers) < 3 {
		t.Fatalf("the scenario has %d trends", len(triggers))
	}
	trigger := triggers[len(triggers)/2]
	live := machine(t, trends.Config{})
	var logged []events.Event
	var want []string
	for i, f := range facts {
		in := factEvent(f)
		out, err := live.Handle(ctx, in, f)
		if err != nil {
			t.Fatal(err)
		}
		if i <= trigger {
			logged = append(logged, in)
			logged = append(logged, out...)
			continue
		}
		for _, ev := range out {
			want = append(want, ev.ID)
		}
	}
	if len(want) == 0 {
		t.Fatal("no trend after the restart point: nothing to compare")
	}
	publishAll(t, pub, logged)

	// The consumer acked every post before the trigger, not the trigger itself.
	spec, ok := topology.LookupConsumer(topology.ConsumerTrends)
	if !ok {
		t.Fatal("no trends consumer in the topology")
	}
	cons, err := env.JS.CreateOrUpdateConsumer(ctx, topology.LogStream, spec.Config())
	if err != nil {
		t.Fatal(err)
	}
	for acked := 0; acked < trigger; {
		batch, err := cons.Fetch(min(trigger-acked, 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			if err := msg.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			acked++
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 10*time.Second, "the ack floor", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumAckPending == 0 && ci.AckFloor.Consumer == uint64(trigger)
	})

	cold := machine(t, trends.Config{})
	st, err := trends.Rebuild(ctx, env.JS, cold, topology.ConsumerTrends, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Facts != trigger {
		t.Errorf("rebuilt %+v, want the %d acked facts", st, trigger)
	}
	var got []string
	for _, f := range facts[trigger:] {
		out, err := cold.Handle(ctx, factEvent(f), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range out {
			got = append(got, ev.ID)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cold start published %d trends %v, the long-running machine %d %v", len(got), got, len(want), want)
	}
}
