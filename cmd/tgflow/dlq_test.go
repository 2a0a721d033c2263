package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

var dlqT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func dlqPost(ch events.ChannelID, msg int64, text string) events.Event {
	return events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Date: dlqT0, Text: text}})
}

func publishFacts(t *testing.T, js jetstream.JetStream, evs ...events.Event) {
	t.Helper()
	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

// runTestStage runs a stage on the topology consumer name until the test ends.
func runTestStage(t *testing.T, js jetstream.JetStream, name, producer string, r *worker.Router) {
	t.Helper()
	c, _ := topology.LookupConsumer(name)
	s, err := worker.NewStage(js, worker.Config{Consumer: c.Config(), Producer: producer, Metrics: worker.NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard()}, r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("stage %s: %v", name, err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func consumerDone(js jetstream.JetStream, name string) bool {
	return natstest.ConsumerIdle(js, name)
}

var errPoisonPill = errors.New("cannot tag a poison pill")

// poisonTagger tags posts; a post whose text is "poison" fails permanently until fixed.
func poisonTagger(fixed *atomic.Bool) *worker.Router {
	r := worker.NewRouter()
	worker.On(r, func(_ context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		if p.Text == "poison" && !fixed.Load() {
			return nil, worker.Permanent(errPoisonPill)
		}
		return []events.Event{events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial,
			Tags: []events.Tag{{Name: "t"}}, PostedAt: p.Date, Text: p.Text, Provider: "test"}, dlqT0)}, nil
	})
	return r
}

// seen counts how often a stage handled each post.
type seen struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *seen) router(fail bool) *worker.Router {
	r := worker.NewRouter()
	worker.On(r, func(_ context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		s.mu.Lock()
		s.n[in.Subject]++
		s.mu.Unlock()
		if fail && p.Text == "poison" {
			return nil, worker.Permanent(errors.New("vision rejects it too"))
		}
		return nil, nil
	})
	return r
}

func (s *seen) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[key]
}

// deadLetters counts the DLQ's entries.
func deadLetters(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	dls, err := worker.ListDeadLetters(context.Background(), js, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(dls)
}

func dlqLs(t *testing.T, env []string, args ...string) []dlqRow {
	t.Helper()
	out, errOut, err := tgflow(t, env, append([]string{"dlq", "ls", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("dlq ls %v: %v\n%s", args, err, errOut)
	}
	var rows []dlqRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("dlq ls --json: %v\n%s", err, out)
	}
	return rows
}

func seqsOf(rows []dlqRow) string {
	var s []string
	for _, r := range rows {
		s = append(s, fmt.Sprint(r.Seq))
	}
	return strings.Join(s, ",")
}

// A poison message that a later code path handles is replayed to its stage only: the
// tagger, which dead-lettered it, tags it; the vision stage, which read the same fact, never
// sees it again; the DLQ is empty afterwards.
func TestDLQReplayReachesItsStageOnly(t *testing.T) {
	nenv := natstest.Start(t)
	var fixed atomic.Bool
	vision := &seen{n: map[string]int{}}
	runTestStage(t, nenv.JS, topology.ConsumerTagger, events.ProducerTagger, poisonTagger(&fixed))
	runTestStage(t, nenv.JS, topology.ConsumerVision, events.ProducerVision, vision.router(false))
	poison := dlqPost(5, 1, "poison")
	publishFacts(t, nenv.JS, poison, dlqPost(5, 2, "fine"))
	env := []string{"TGFLOW_NATS_URL=" + nenv.URL}
	// Idle alone is not enough: right after a publish a consumer may not count it yet.
	natstest.Eventually(t, 10*time.Second, "the fine post tagged, the poison dead-lettered, both stages done", func() bool {
		return natstest.Count(t, nenv.JS, "posts.tagged.5") == 1 && deadLetters(t, nenv.JS) == 1 &&
			consumerDone(nenv.JS, topology.ConsumerTagger) && vision.count(poison.Subject) == 1 && consumerDone(nenv.JS, topology.ConsumerVision)
	})
	rows := dlqLs(t, env)
	if len(rows) != 1 || rows[0].Consumer != topology.ConsumerTagger || rows[0].Class != string(worker.ClassPermanent) || !strings.Contains(rows[0].Reason, errPoisonPill.Error()) {
		t.Fatalf("DLQ %+v", rows)
	}
	if n := natstest.Count(t, nenv.JS, "posts.tagged.5"); n != 1 {
		t.Fatalf("%d posts tagged before the fix, want 1", n)
	}

	fixed.Store(true) // the later code path
	out, errOut, err := tgflow(t, env, "dlq", "replay", fmt.Sprint(rows[0].Seq))
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "to tagger") {
		t.Fatalf("replay output: %s", out)
	}
	natstest.Eventually(t, 10*time.Second, "the replayed post tagged", func() bool { return natstest.Count(t, nenv.JS, "posts.tagged.5") == 2 })
	natstest.Eventually(t, 10*time.Second, "tagger done", func() bool { return consumerDone(nenv.JS, topology.ConsumerTagger) })
	if got := vision.count(poison.Subject); got != 1 {
		t.Fatalf("the vision stage handled the poison post %d times, want 1 (the replay is the tagger's alone)", got)
	}
	if rows := dlqLs(t, env); len(rows) != 0 {
		t.Fatalf("DLQ after the replay: %+v", rows)
	}
	tagged := natstest.Facts(t, nenv.JS, "posts.tagged.5")
	found := false
	for _, ev := range tagged {
		found = found || ev.Subject == poison.Subject
	}
	if !found {
		t.Fatalf("no posts.tagged for %s after the replay", poison.Subject)
	}
}

// The DLQ tools: ls filters by consumer, class and age; show prints a whole dead letter;
// drop deletes exactly what it names, and nothing without --yes.
func TestDLQShowFilterAndDrop(t *testing.T) {
	nenv := natstest.Start(t)
	var never atomic.Bool
	runTestStage(t, nenv.JS, topology.ConsumerTagger, events.ProducerTagger, poisonTagger(&never))
	vision := &seen{n: map[string]int{}}
	runTestStage(t, nenv.JS, topology.ConsumerVision, events.ProducerVision, vision.router(true))
	// Three poison posts (each dead-lettered by both stages) and one undecodable message.
	publishFacts(t, nenv.JS, dlqPost(6, 1, "poison"), dlqPost(6, 2, "poison"), dlqPost(6, 3, "poison"))
	bad := &nats.Msg{Subject: "posts.parsed.6", Header: nats.Header{"ce-type": {"org.tgflow.post.parsed.v9"}, "ce-id": {"bad-1"}}, Data: []byte(`{"not":"a post"}`)}
	if _, err := nenv.JS.PublishMsg(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "both stages done", func() bool {
		return consumerDone(nenv.JS, topology.ConsumerTagger) && consumerDone(nenv.JS, topology.ConsumerVision)
	})
	env := []string{"TGFLOW_NATS_URL=" + nenv.URL}
	natstest.Eventually(t, 10*time.Second, "8 dead letters", func() bool { return len(dlqLs(t, env)) == 8 })

	filters := []struct {
		name string
		args []string
		want int
	}{
		{"all", nil, 8},
		{"one consumer", []string{"--consumer", "tagger"}, 4},
		{"one class", []string{"--class", "decode"}, 2},
		{"consumer and class", []string{"--consumer", "vision", "--class", "permanent"}, 3},
		{"older than an hour", []string{"--older-than", "1h"}, 0},
		{"newer than an hour", []string{"--newer-than", "1h"}, 8},
		{"limit", []string{"--consumer", "tagger", "--limit", "2"}, 2},
	}
	for _, tc := range filters {
		t.Run("ls "+tc.name, func(t *testing.T) {
			if rows := dlqLs(t, env, tc.args...); len(rows) != tc.want {
				t.Fatalf("%d rows, want %d: %+v", len(rows), tc.want, rows)
			}
		})
	}
	if _, _, err := tgflow(t, env, "dlq", "ls", "--class", "bogus"); !errors.Is(err, errUsage) {
		t.Fatalf("ls --class bogus: %v", err)
	}

	// show: the whole dead letter, headers and the body pretty-printed.
	decode := dlqLs(t, env, "--consumer", "tagger", "--class", "decode")[0]
	out, _, err := tgflow(t, env, "dlq", "show", fmt.Sprint(decode.Seq))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			fields[f[0]] = f[len(f)-1]
		}
	}
	for k, v := range map[string]string{"class": "decode", "consumer": "tagger", "Tgflow-Dlq-Consumer": "tagger", "Tgflow-Dlq-Class": "decode", "ce-type": "org.tgflow.post.parsed.v9"} {
		if fields[k] != v {
			t.Errorf("dlq show: %s = %q, want %q in\n%s", k, fields[k], v, out)
		}
	}
	if !strings.Contains(out, "body (16 bytes):\n{\n  \"not\": \"a post\"\n}") {
		t.Errorf("dlq show: the body is not pretty-printed:\n%s", out)
	}
	out, _, err = tgflow(t, env, "dlq", "show", "--json", fmt.Sprint(decode.Seq))
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Consumer string              `json:"consumer"`
		Headers  map[string][]string `json:"headers"`
		Body     map[string]string   `json:"body"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.Consumer != "tagger" || shown.Body["not"] != "a post" || shown.Headers["Tgflow-Dlq-Class"][0] != "decode" {
		t.Fatalf("dlq show --json (%v): %s", err, out)
	}
	if _, _, err := tgflow(t, env, "dlq", "show", "9999"); err == nil || !strings.Contains(err.Error(), "no dead letter 9999") {
		t.Fatalf("show of a missing entry: %v", err)
	}

	before := dlqLs(t, env)
	victim := before[1].Seq
	// Without --yes nothing is deleted.
	out, _, err = tgflow(t, env, "dlq", "drop", fmt.Sprint(victim))
	if !errors.Is(err, errUsage) || !strings.Contains(out, fmt.Sprintf("would drop DLQ %d", victim)) {
		t.Fatalf("drop without --yes: %v\n%s", err, out)
	}
	if got := seqsOf(dlqLs(t, env)); got != seqsOf(before) {
		t.Fatalf("drop without --yes deleted something: %s → %s", seqsOf(before), got)
	}
	// A missing sequence among the named ones: nothing is deleted.
	if _, _, err := tgflow(t, env, "dlq", "drop", "--yes", fmt.Sprint(victim), "9999"); err == nil {
		t.Fatal("drop of a missing entry succeeded")
	}
	if got := seqsOf(dlqLs(t, env)); got != seqsOf(before) {
		t.Fatalf("a failed drop deleted something: %s → %s", seqsOf(before), got)
	}
	if _, _, err := tgflow(t, env, "dlq", "drop", "--yes", fmt.Sprint(victim)); err != nil {
		t.Fatal(err)
	}
	var want []dlqRow
	for _, r := range before {
		if r.Seq != victim {
			want = append(want, r)
		}
	}
	if got := seqsOf(dlqLs(t, env)); got != seqsOf(want) {
		t.Fatalf("drop %d: left %s, want %s", victim, got, seqsOf(want))
	}
	// By consumer and age: too young, nothing; any age, exactly the vision's.
	if _, _, err := tgflow(t, env, "dlq", "drop", "--yes", "--consumer", "vision", "--older-than", "1h"); err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(dlqLs(t, env)); got != seqsOf(want) {
		t.Fatalf("drop of entries older than 1h deleted %s → %s", seqsOf(want), got)
	}
	if _, _, err := tgflow(t, env, "dlq", "drop", "--yes", "--consumer", "vision", "--older-than", "0s"); err != nil {
		t.Fatal(err)
	}
	var left []dlqRow
	for _, r := range want {
		if r.Consumer != "vision" {
			left = append(left, r)
		}
	}
	if got := seqsOf(dlqLs(t, env)); got != seqsOf(left) || len(left) == 0 {
		t.Fatalf("drop --consumer vision: left %s, want %s", got, seqsOf(left))
	}
	// A selection needs both a consumer and an age; sequences and a selection do not mix.
	for _, args := range [][]string{{"--consumer", "tagger", "--yes"}, {"--older-than", "0s", "--yes"}, {"1", "--consumer", "tagger", "--older-than", "0s"}, {}} {
		if _, _, err := tgflow(t, env, append([]string{"dlq", "drop"}, args...)...); !errors.Is(err, errUsage) {
			t.Errorf("drop %v: %v, want a usage error", args, err)
		}
	}
}
