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
)

func startFromConfig(t *testing.T) string {
	t.Helper()
	for _, u := range []string{"ADMIN", "CLI", "PROJ_POSTGRES", "PROJ_QDRANT", "PROJ_NEO4J", "TAGGER"} {
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
