package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/server/servertest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/projsvc/projsvctest"
)

// Every registered service runs as `tgflow <service>` under its own NATS user, on a server
// configured by the committed nats.conf, over the sample and a post linking a local page:
// the pipeline drains, each stage publishes its facts, and the server refuses nothing.
// (ingest needs Telegram and is skipped as not configured here; nats/server's
// TestIngestUserPermissions does what it does under its user.)
func TestEveryServiceRunsUnderItsNATSUser(t *testing.T) {
	srv := servertest.Start(t)
	ctx := context.Background()
	base := map[string]string{
		"TGFLOW_DATA_DIR": t.TempDir(), "TGFLOW_EMBEDDER": "hashing", "TGFLOW_HTTP_ADDR": "",
		"TGFLOW_LOG_LEVEL": "warn",
		// Only the local page is fetched: the sample's example.* links would need the network.
		"TGFLOW_FETCH_DENY_DOMAINS": "example.com,example.org,example.net", "TGFLOW_FETCH_ALLOW_CIDRS": "127.0.0.0/8",
	}
	for _, b := range projsvctest.Backends() {
		env := b.Env(t)
		// One embedder for all (proj-qdrant holds its space): the hashing one, not the
		// contract script's.
		maps.DeleteFunc(env, func(k, _ string) bool { return k == "TGFLOW_EMBEDDER" || strings.HasPrefix(k, "TGFLOW_OPENAI_") })
		maps.Copy(base, env)
	}
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<html><head><title>Local article</title></head><body><article><p>"+
			strings.Repeat("NATS JetStream keeps every fact of the pipeline in one log. ", 20)+"</p></article></body></html>")
	}))
	t.Cleanup(page.Close)
	base["TGFLOW_FETCH_PORTS"] = page.URL[strings.LastIndex(page.URL, ":")+1:]

	as := func(user string, args ...string) (string, error) {
		t.Helper()
		env := maps.Clone(base)
		env["TGFLOW_NATS_URL"] = srv.URL(user)
		var kv []string
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		var out, errOut syncBuffer
		err := run(ctx, args, &out, &errOut, kv)
		return out.String() + errOut.String(), err
	}
	for _, step := range []struct {
		user string
		args []string
	}{
		{"admin", []string{"nats", "apply", "--all"}},
		{"admin", []string{"migrate", "up"}},
		{"admin", []string{"import", "../../testdata/sample/DataExport"}},
		{"cli", []string{"channels", "add", "@tgflow_sample"}},
		{"cli", []string{"channels", "ls"}},
	} {
		if out, err := as(step.user, step.args...); err != nil {
			t.Fatalf("tgflow %s as %s: %v\n%s", strings.Join(step.args, " "), step.user, err, out)
		}
	}
	_, admin := natstest.Connect(t, srv.URL("admin"))
	pub, err := publish.New(admin, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	link := page.URL + "/article"
	post := events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1700000001, MessageID: 9001},
		Date: time.Now().UTC().Truncate(time.Second), Text: "A long read about logs and streams: " + link, Links: []string{link}, Origin: "export"}})
	if _, err := pub.Publish(ctx, []events.Event{post}); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	outs := map[string]string{}
	errs := map[string]error{}
	var consumers []string
	for _, spec := range registry() {
		if spec.Name != "ingest" {
			consumers = append(consumers, spec.Consumers...)
		}
		wg.Go(func() {
			env := maps.Clone(base)
			env["TGFLOW_NATS_URL"] = srv.URL(spec.Name)
			var kv []string
			for k, v := range env {
				kv = append(kv, k+"="+v)
			}
			var out, errOut syncBuffer
			err := run(runCtx, []string{spec.Name}, &out, &errOut, kv)
			mu.Lock()
			defer mu.Unlock()
			outs[spec.Name], errs[spec.Name] = out.String()+errOut.String(), err
		})
	}
	idleErr := waitIdle(runCtx, admin, consumers, 4*time.Minute)
	cancel()
	wg.Wait()
	for _, spec := range registry() {
		if errs[spec.Name] != nil {
			t.Errorf("tgflow %s under its user: %v\n%s", spec.Name, errs[spec.Name], outs[spec.Name])
		}
	}
	if idleErr != nil {
		t.Errorf("the services did not drain the log: %v", idleErr)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("the server refused %d operation(s):\n%s", len(v), strings.Join(v, "\n"))
	}
	for _, typ := range []events.Type{events.TypePostVisionAnalyzed, events.TypePostTagged, events.TypePostEnriched,
		events.TypePostEmbedded, events.TypeAlbumAssembled} {
		s, _ := events.Lookup(typ)
		if n := natstest.Count(t, admin, s.Filter()); n == 0 {
			t.Errorf("no %s fact: its stage did not work under its user", typ)
		}
	}
	pages, err := admin.KeyValue(ctx, topology.BucketPages)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pages.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cached []string
	for k := range keys.Keys() {
		cached = append(cached, k)
	}
	if len(cached) == 0 {
		t.Errorf("the enricher cached no page (local page %s)", link)
	}
	for _, c := range consumers {
		info, err := consumerInfo(ctx, admin, c)
		if err != nil {
			t.Fatal(err)
		}
		if info.Delivered.Consumer == 0 {
			t.Errorf("consumer %s delivered nothing", c)
		}
	}
}
