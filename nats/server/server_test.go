// Package server_test checks the production NATS config: every service user can do its
// job and nothing else.
package server_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services/ingest/logscan"
)

func startFromConfig(t *testing.T) string {
	t.Helper()
	for _, u := range []string{"ADMIN", "CLI", "PROJ_POSTGRES", "PROJ_QDRANT", "PROJ_NEO4J", "TAGGER", "INGEST"} {
		t.Setenv("NATS_"+u+"_PASSWORD", strings.ToLower(u)+"-pw")
	}
	opts, err := server.ProcessConfigFile(filepath.Join(".", "nats.conf"))
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func connectAs(t *testing.T, url, user string) (*nats.Conn, jetstream.JetStream, chan error) {
	t.Helper()
	asyncErrs := make(chan error, 16)
	pw := strings.ToLower(strings.ReplaceAll(strings.ToUpper(user), "-", "_")) + "-pw"
	nc, err := nats.Connect(url, nats.UserInfo(user, pw), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case asyncErrs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return nc, js, asyncErrs
}

func TestServiceUsersHaveLeastPrivilege(t *testing.T) {
	url := startFromConfig(t)
	ctx := context.Background()
	_, admin, _ := connectAs(t, url, "admin")
	if _, err := topology.Apply(ctx, admin, topology.ApplyOptions{}); err != nil {
		t.Fatalf("admin apply: %v", err)
	}
	in := events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 5, MessageID: 1}, Date: time.Now(), Text: "hi"}}, time.Now(), "0")
	h, body, _ := events.Encode(in)
	if _, err := admin.PublishMsg(ctx, &nats.Msg{Subject: "posts.parsed.5", Header: nats.Header(h), Data: body}); err != nil {
		t.Fatal(err)
	}

	// The tagger user runs the tagger stage.
	_, tjs, _ := connectAs(t, url, "tagger")
	cc, _ := topology.LookupConsumer(topology.ConsumerTagger)
	r := worker.NewRouter()
	worker.On(r, func(_ context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		return []events.Event{events.Derive(in, events.ProducerTagger, &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial,
			PostedAt: p.Date, Provider: "test"}, time.Now())}, nil
	})
	st, err := worker.NewStage(tjs, worker.Config{Consumer: cc.Config(), Producer: events.ProducerTagger,
		Metrics: worker.NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard()}, r)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(sctx) }()
	natstest.Eventually(t, 10*time.Second, "tagged fact published by the tagger user", func() bool {
		s, err := admin.Stream(ctx, topology.LogStream)
		if err != nil {
			return false
		}
		_, err = s.GetLastMsgForSubject(ctx, "posts.tagged.5")
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tagger stage as tagger user: %v", err)
	}

	// The tagger user may not publish facts it does not produce, nor touch other consumers.
	_, tjs2, _ := connectAs(t, url, "tagger")
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := tjs2.PublishMsg(pctx, &nats.Msg{Subject: "posts.parsed.5", Header: nats.Header(h), Data: body}); err == nil {
		t.Fatal("tagger user published posts.parsed")
	}
	if _, err := tjs2.Consumer(pctx, topology.LogStream, topology.ConsumerEnricher); err == nil {
		t.Fatal("tagger user read the enricher consumer")
	}

	// The CLI user may publish subscription commands only.
	_, cjs, _ := connectAs(t, url, "cli")
	sub := events.New(events.ProducerCLI, &events.ChannelSubscribed{Username: "durov", At: time.Now()}, time.Now())
	sh, sb, _ := events.Encode(sub)
	if _, err := cjs.PublishMsg(ctx, &nats.Msg{Subject: "channels.subscribed.@durov", Header: nats.Header(sh), Data: sb}); err != nil {
		t.Fatalf("cli publish subscription: %v", err)
	}
	pctx2, pcancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel2()
	_, err = cjs.PublishMsg(pctx2, &nats.Msg{Subject: "posts.tagged.5", Data: []byte("{}")})
	if err == nil || !(errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "ermission")) {
		t.Fatalf("cli user published a tagged fact: %v", err)
	}
}

// The ingest user can do what ingest does — its KV buckets (get, put, compare-and-set,
// watch), the media store, its facts, its consumer — and nothing of the other stages.
func TestIngestUserPermissions(t *testing.T) {
	url := startFromConfig(t)
	ctx := context.Background()
	_, admin, _ := connectAs(t, url, "admin")
	if _, err := topology.Apply(ctx, admin, topology.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	_, js, _ := connectAs(t, url, "ingest")
	for _, b := range []string{topology.BucketCursors, topology.BucketChannels, topology.BucketSession, topology.BucketLeases} {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			t.Fatalf("bind %s: %v", b, err)
		}
		rev, err := kv.Create(ctx, "k1", []byte("1"))
		if err != nil {
			t.Fatalf("%s create: %v", b, err)
		}
		if _, err := kv.Update(ctx, "k1", []byte("2"), rev); err != nil {
			t.Fatalf("%s update: %v", b, err)
		}
		e, err := kv.Get(ctx, "k1")
		if err != nil || string(e.Value()) != "2" {
			t.Fatalf("%s get: %v", b, err)
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatalf("%s list keys: %v", b, err)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		if n != 1 {
			t.Fatalf("%s: %d keys", b, n)
		}
		if err := kv.Delete(ctx, "k1"); err != nil {
			t.Fatalf("%s delete: %v", b, err)
		}
	}
	obs, err := js.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "abc123", []byte("jpeg bytes")); err != nil {
		t.Fatalf("media put: %v", err)
	}
	if b, err := obs.GetBytes(ctx, "abc123"); err != nil || string(b) != "jpeg bytes" {
		t.Fatalf("media get: %q %v", b, err)
	}
	post := events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 5, MessageID: 1}, Date: time.Now()}}, time.Now(), "0")
	h, body, _ := events.Encode(post)
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "posts.parsed.5", Header: nats.Header(h), Data: body}); err != nil {
		t.Fatalf("publish posts.parsed: %v", err)
	}
	if ids, err := logscan.IDs(ctx, js, "posts.parsed.5", time.Time{}); err != nil || !ids[post.ID] {
		t.Fatalf("read its facts back from the log: %v (%d ids)", err, len(ids))
	}
	c, _ := topology.LookupConsumer(topology.ConsumerIngest)
	cons, err := js.CreateOrUpdateConsumer(ctx, topology.LogStream, c.Config())
	if err != nil {
		t.Fatalf("ingest consumer: %v", err)
	}
	if _, err := cons.FetchNoWait(1); err != nil {
		t.Fatalf("fetch: %v", err)
	}

	deny := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("ingest user could %s", what)
		}
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	c1, cancel1 := short()
	defer cancel1()
	_, err = js.PublishMsg(c1, &nats.Msg{Subject: "posts.tagged.5", Data: []byte("{}")})
	deny("publish posts.tagged", err)
	c2, cancel2 := short()
	defer cancel2()
	if kv, err := js.KeyValue(c2, topology.BucketAlbums); err == nil {
		_, err = kv.Put(c2, "x", []byte("y"))
		deny("write the albums bucket", err)
	}
	c3, cancel3 := short()
	defer cancel3()
	_, err = js.Consumer(c3, topology.LogStream, topology.ConsumerTagger)
	deny("read the tagger consumer", err)
}
