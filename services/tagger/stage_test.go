package tagger_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/embed/topics"
	"github.com/tgflow/tgflow/services/openaicompat"
	"github.com/tgflow/tgflow/services/tagger"
)

// logEnv is an embedded server with the topology (the tagger's buckets included).
type logEnv struct {
	*natstest.Env
	pub *publish.Publisher
}

func startLog(t *testing.T) *logEnv {
	t.Helper()
	env := natstest.Start(t)
	pub, err := publish.New(env.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &logEnv{Env: env, pub: pub}
}

func (e *logEnv) publish(t *testing.T, evs ...events.Event) {
	t.Helper()
	if dups, err := e.pub.Publish(context.Background(), evs); err != nil || dups != 0 {
		t.Fatalf("publish: dups=%d err=%v", dups, err)
	}
}

func stageConfig() tagger.StageConfig {
	return tagger.StageConfig{Kind: tagger.KindLocal, Topics: topics.Config{Max: 3}, ShortTextRunes: 40, Concurrency: 4,
		DFInterval: 50 * time.Millisecond, BreakerOpen: 500 * time.Millisecond}
}

// runStage starts a tagger stage on the log; stop cancels it and waits for Run.
func (e *logEnv) runStage(t *testing.T, cfg tagger.StageConfig, chat *openaicompat.Client) (*tagger.Stage, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := services.Deps{JS: e.JS, Logger: slog.New(slog.DiscardHandler), Metrics: worker.NewMetrics(reg), Registry: reg}
	st, err := tagger.NewStage(context.Background(), d, cfg, chat)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := st.Run(ctx); err != nil {
			t.Errorf("stage: %v", err)
		}
	})
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return st, stop
}

// tagged reads every posts.tagged on the log, in order.
func (e *logEnv) tagged(t *testing.T) []*events.PostTagged {
	t.Helper()
	var out []*events.PostTagged
	for _, ev := range natstest.Facts(t, e.JS, "posts.tagged.>") {
		out = append(out, ev.Data.(*events.PostTagged))
	}
	return out
}

func (e *logEnv) idle(t *testing.T) {
	t.Helper()
	natstest.Eventually(t, 30*time.Second, "the tagger consumer idle", func() bool {
		return natstest.ConsumerIdle(e.JS, topology.ConsumerTagger)
	})
}

func (e *logEnv) dlqEmpty(t *testing.T) {
	t.Helper()
	s, err := e.JS.Stream(context.Background(), topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("the DLQ holds %d messages", info.State.Msgs)
	}
}

// find returns the posts.tagged of a post with trigger and rev, failing unless exactly one.
func find(t *testing.T, all []*events.PostTagged, msg int64, rev events.Rev) *events.PostTagged {
	t.Helper()
	var got []*events.PostTagged
	for _, p := range all {
		if p.MessageID == msg && p.Rev == rev {
			got = append(got, p)
		}
	}
	if len(got) != 1 {
		t.Fatalf("post %d rev %+v: %d posts.tagged, want 1", msg, rev, len(got))
	}
	return got[0]
}

func count(all []*events.PostTagged, cond func(*events.PostTagged) bool) int {
	n := 0
	for _, p := range all {
		if cond(p) {
			n++
		}
	}
	return n
}

// lastParsedSeq is the stream sequence of the last posts.parsed of the test channel.
func (e *logEnv) lastParsedSeq(t *testing.T) uint64 {
	t.Helper()
	s, err := e.JS.Stream(context.Background(), topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "posts.parsed."+channel.String())
	if err != nil {
		t.Fatal(err)
	}
	return m.Sequence
}

func filler(i int) string {
	words := []string{"рынок", "нефть", "погода", "футбол", "выборы", "концерт", "музей", "поезд", "банк", "урожай"}
	return fmt.Sprintf("Новость номер %d: %s и %s снова в центре внимания, эксперты обсуждают %s.", i, words[i%10], words[(i+3)%10], words[(i+7)%10])
}

// TestStageOnTheLog runs the stage on an embedded server: the Go release post gets a go tag,
// an edit a new version, a vision result a revision 1 whose tags come from the OCR text, a
// deleted post no more tags; a restart in the middle publishes no second posts.tagged for
// any post revision and resumes the document frequencies from the snapshot.
func TestStageOnTheLog(t *testing.T) {
	e := startLog(t)
	e.publish(t, parsedEv(1, goPost, true), parsedEv(2, catPost, true))
	for i := range 20 {
		e.publish(t, parsedEv(int64(100+i), filler(i), false))
	}
	st, stop := e.runStage(t, stageConfig(), nil)
	natstest.Eventually(t, 30*time.Second, "22 posts tagged", func() bool { return natstest.Count(t, e.JS, "posts.tagged.>") >= 22 })

	first := find(t, e.tagged(t), 1, events.Rev{})
	if tags := tagNames(first); !slices.Contains(tags, "go") && !slices.Contains(tags, "golang") {
		t.Errorf("the Go release post is tagged %q", tags)
	}
	if first.Trigger != events.TriggerInitial || first.Provider != tagger.Provider {
		t.Errorf("initial: %+v", first)
	}

	e.publish(t, editedEv(1, 1700000000, editedPost, true))
	natstest.Eventually(t, 30*time.Second, "the edit tagged", func() bool {
		return count(e.tagged(t), func(p *events.PostTagged) bool { return p.Trigger == events.TriggerEdit }) == 1
	})
	edit := find(t, e.tagged(t), 1, events.Rev{Version: 1700000000})
	if edit.Trigger != events.TriggerEdit || edit.Text != editedPost {
		t.Errorf("edit: %+v", edit)
	}

	e.publish(t, visionEv(1, 0, ocrItem(ocrText)))
	natstest.Eventually(t, 30*time.Second, "the vision retag", func() bool {
		return count(e.tagged(t), func(p *events.PostTagged) bool { return p.Trigger == events.TriggerVisionRetag }) == 1
	})
	vis := find(t, e.tagged(t), 1, events.Rev{Version: 1700000000, Revision: 1})
	if !slices.ContainsFunc(tagNames(vis), func(s string) bool {
		return strings.HasPrefix(s, "квантов") || strings.HasPrefix(s, "процессор")
	}) {
		t.Errorf("vision_retag tags %q do not show the OCR words", tagNames(vis))
	}
	if !strings.Contains(vis.Vision, "КВАНТОВЫЙ") {
		t.Errorf("vision text %q", vis.Vision)
	}

	if tagger.ReadsDeletions() {
		// In log order, and handled in that order: handlers of one post running at once
		// are not ordered by the runtime (Concurrency > 1).
		e.publish(t, deletedEv(2))
		// Wait for the deletion to be recorded, not for the consumer to look idle: just
		// after a publish it can look idle before it counted the message.
		kv, err := e.JS.KeyValue(context.Background(), tagger.PostsBucket)
		if err != nil {
			t.Fatal(err)
		}
		posts := tagger.NewKVPosts(kv)
		key := events.PostRef{ChannelID: channel, MessageID: 2}.Key()
		natstest.Eventually(t, 30*time.Second, "the deletion recorded", func() bool {
			rec, err := posts.Update(context.Background(), key, func(r *tagger.PostRecord) (*tagger.PostRecord, bool) { return r, false })
			return err == nil && rec != nil && rec.Deleted
		})
		e.idle(t)
		e.publish(t, visionEv(2, 0, ocrItem(ocrText)), editedEv(2, 1700000100, catPost+" Обновлено.", true))
		e.idle(t)
		if n := count(e.tagged(t), func(p *events.PostTagged) bool { return p.MessageID == 2 && p.Rev != (events.Rev{}) }); n != 0 {
			t.Errorf("a deleted post was tagged again %d times", n)
		}
	} else {
		t.Log("the topology's tagger consumer does not read posts.deleted: the deletion path is checked by TestDeletedPostIsNotTagged only")
	}

	// Restart in the middle of a burst.
	before := natstest.Count(t, e.JS, "posts.tagged.>")
	var burst []events.Event
	for i := range 60 {
		burst = append(burst, parsedEv(int64(200+i), filler(i+20), false))
	}
	e.publish(t, burst...)
	natstest.Eventually(t, 30*time.Second, "part of the burst tagged", func() bool { return natstest.Count(t, e.JS, "posts.tagged.>") > before })
	stop()
	if st.DFFeed().DF().Seq() == 0 {
		t.Fatal("the DF feed observed nothing")
	}
	snapSeq := st.DFFeed().DF().Seq()
	parsedN := 2 + 20 + 60

	st2, stop2 := e.runStage(t, stageConfig(), nil)
	defer stop2()
	if got := st2.DFFeed().Restored(); got != snapSeq {
		t.Errorf("restarted from the DF snapshot at seq %d, the first run had observed up to %d", got, snapSeq)
	}
	more := []events.Event{parsedEv(300, filler(99), false), parsedEv(301, filler(98), false)}
	e.publish(t, more...)
	parsedN += len(more)
	natstest.Eventually(t, 30*time.Second, "every post tagged", func() bool {
		return count(e.tagged(t), func(p *events.PostTagged) bool { return p.Trigger == events.TriggerInitial }) >= parsedN
	})
	e.idle(t)
	natstest.Eventually(t, 10*time.Second, "the DF to reach the last post", func() bool { return st2.DFFeed().DF().Seq() == e.lastParsedSeq(t) })
	if n := st2.DFFeed().DF().N(); n != parsedN {
		t.Errorf("the DF counts %d posts, the log holds %d posts.parsed", n, parsedN)
	}
	if r := st2.DFFeed().Read(); r != int64(parsedN)-int64(parsedUpTo(t, e, snapSeq)) {
		t.Errorf("the restarted feed read %d posts, want only those after the snapshot", r)
	}

	// Exactly one posts.tagged per post revision.
	all := e.tagged(t)
	seen := map[string]int{}
	for _, p := range all {
		seen[fmt.Sprintf("%s@%d.%d", p.Key(), p.Version, p.Revision)]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s: %d posts.tagged", k, n)
		}
	}
	if want := parsedN + 2; len(all) != want {
		t.Errorf("%d posts.tagged on the log, want %d (each parsed, the edit, the vision retag)", len(all), want)
	}
	if e.pub.Duplicates() != 0 {
		t.Errorf("%d inputs were published twice", e.pub.Duplicates())
	}
	e.dlqEmpty(t)
}

// parsedUpTo counts the posts.parsed at or before seq.
func parsedUpTo(t *testing.T, e *logEnv, seq uint64) int {
	t.Helper()
	ctx := context.Background()
	oc, err := e.JS.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"posts.parsed.>"}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if meta.Sequence.Stream > seq {
			return n
		}
		n++
		if meta.NumPending == 0 {
			return n
		}
	}
}
