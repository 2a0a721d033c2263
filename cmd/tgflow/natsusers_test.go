package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/server"
	"github.com/tgflow/tgflow/nats/server/servertest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services"
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

	as := func(ctx context.Context, user string, args ...string) (string, error) {
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
		if out, err := as(ctx, step.user, step.args...); err != nil {
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
	var consumers, drained []string
	for _, spec := range registry() {
		if spec.Name != "ingest" {
			consumers = append(consumers, spec.Consumers...)
			drained = append(drained, spec.Name)
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
	// The operator tools that run in a service's container, under its user.
	if out, err := as(ctx, "proj-postgres", "projections", "verify", "postgres"); err != nil {
		t.Errorf("tgflow projections verify postgres as proj-postgres: %v\n%s", err, out)
	}
	// Doctor reads streams, consumers and the log (what the dashboard shows).
	if out, err := as(ctx, "doctor", "doctor", "--json", "--services", strings.Join(drained, ",")); err != nil {
		t.Errorf("tgflow doctor as doctor: %v\n%s", err, out)
	}
	// The API reads a post's facts from the log and the consumers' lag.
	apiGet(t, as, "/api/posts/1700000001/9001", "/api/channels")
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
	// What each user's permissions allow that this run did not use (paths the run does not
	// take, such as dead-lettering, or room to tighten): logged for review.
	pubs := srv.Published()
	for _, spec := range append(registry(), services.Spec{Name: "api"}, services.Spec{Name: "doctor"}, services.Spec{Name: "cli"}) {
		u, _ := server.Lookup(spec.Name)
		allow, _ := u.Permissions()
		var unused []string
		for _, pattern := range allow {
			if !slices.ContainsFunc(pubs[spec.Name], func(subj string) bool { return subjectMatches(pattern, subj) }) {
				unused = append(unused, pattern)
			}
		}
		t.Logf("user %s published %d subject(s); unused allows: %v", spec.Name, len(pubs[spec.Name]), unused)
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

// subjectMatches reports whether a NATS subject matches pattern (* one token, > the rest).
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

// apiGet runs `tgflow api` under the api user until each path answered 200.
func apiGet(t *testing.T, as func(ctx context.Context, user string, args ...string) (string, error), paths ...string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, apiStop := context.WithCancel(context.Background())
	defer apiStop()
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = as(ctx, "api", "api", "--addr", addr)
		done <- err
	}()
	natstest.Eventually(t, 30*time.Second, "tgflow api ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for _, path := range paths {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s (%v)", path, resp.StatusCode, body, err)
		}
	}
	apiStop()
	if err := <-done; err != nil {
		t.Errorf("tgflow api as api: %v\n%s", err, out)
	}
}
