package proctest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/proctest"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
)

// faultServices run one process each in the fault run.
var faultServices = []string{"vision", "tagger", "enricher", "embedder", "albums", "trends", "proj-postgres"}

// TestFaultRunLosesNothing feeds one generated corpus twice: once while random service
// processes are SIGKILLed and restarted and the NATS server is killed and restarted once,
// once without faults. The faulted run ends with nothing pending on any consumer, an empty
// DLQ, exactly the topology's consumers, a Postgres model equal to a rebuild from its log
// (tgflow projections verify) and equal, section by section, to the fault-free run's.
func TestFaultRunLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every service as a process, twice")
	}
	dir := t.TempDir()
	bins := map[string]string{
		"tgflow": proctest.Build(t, dir, "github.com/tgflow/tgflow/cmd/tgflow"),
		"nats":   proctest.Build(t, dir, "github.com/nats-io/nats-server/v2"),
	}
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			fmt.Fprintln(w, "User-agent: *\nAllow: /")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>Статья %s</title></head><body><article><h1>Статья %[1]s</h1><p>%s</p></article></body></html>",
			r.URL.Path, strings.Repeat("Текст статьи о журнале фактов и отказоустойчивости. Article text about fault tolerance. ", 20))
	}))
	t.Cleanup(pages.Close)
	seed := uint64(time.Now().UnixNano())
	t.Logf("corpus seed %d", seed)
	// TGFLOW_FAULT_POSTS makes a long run (the test command's is short).
	posts := 300
	if v := os.Getenv("TGFLOW_FAULT_POSTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("TGFLOW_FAULT_POSTS=%q: want a number of posts >= 10", v)
		}
		posts = n
	}
	corpus := proctest.NewCorpus(proctest.CorpusOptions{Posts: posts, Channels: max(6, posts/200), PageURL: pages.URL, Seed: seed})
	t.Logf("corpus: %d posts, %d edits, %d deletions, %d albums, %d images, %d facts",
		corpus.Posts, corpus.Edits, corpus.Deletes, corpus.Albums, len(corpus.Images), len(corpus.Facts))

	faulted := runCorpus(t, bins, corpus, true)
	clean := runCorpus(t, bins, corpus, false)
	// What the corpus alone decides is equal. Deletions race with the stages (a post deleted
	// before the tagger reached it is never tagged, which depends on timing), and pages and
	// images carry the time they were fetched or analysed, so those are compared on the
	// posts that survive and without those times.
	for _, name := range []string{"posts", "post_media", "album_items", "channels"} {
		if clean.digest[name] != faulted.digest[name] {
			t.Errorf("Postgres %s: fault-free %+v, faulted %+v", name, clean.digest[name], faulted.digest[name])
		}
	}
	for _, subj := range []string{"posts.parsed", "posts.edited", "posts.deleted", "albums.parsed", "albums.assembled", "posts.vision.analyzed"} {
		if clean.facts[subj] != faulted.facts[subj] {
			t.Errorf("%s: %d facts fault-free, %d faulted", subj, clean.facts[subj], faulted.facts[subj])
		}
	}
	for q, want := range clean.rows {
		got := faulted.rows[q]
		if !slices.Equal(got, want) {
			t.Errorf("%s:\nfault-free %d rows, faulted %d; first difference: %s", q, len(want), len(got), firstDiff(want, got))
		}
	}
}

// surviving are queries over the posts that were not deleted: what the stages made of them
// does not depend on timing.
var surviving = []string{
	`SELECT p.channel_id, p.message_id, e.version, e.revision, e.dim, e.input_sha256 FROM tgflow.posts p
	   JOIN tgflow.post_embeddings e USING (channel_id, message_id) WHERE p.deleted_at IS NULL ORDER BY 1, 2`,
	`SELECT p.channel_id, p.message_id, string_agg(t.tag, ',' ORDER BY t.tag) FROM tgflow.posts p
	   JOIN tgflow.post_tags t USING (channel_id, message_id) WHERE p.deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2`,
	`SELECT p.channel_id, p.message_id, pp.position, pp.url, pp.status FROM tgflow.posts p
	   JOIN tgflow.post_pages pp USING (channel_id, message_id) WHERE p.deleted_at IS NULL ORDER BY 1, 2, 3`,
	`SELECT p.channel_id, p.message_id, v.position, v.media_sha256, v.phash, v.width, v.height FROM tgflow.posts p
	   JOIN tgflow.post_vision v USING (channel_id, message_id) WHERE p.deleted_at IS NULL ORDER BY 1, 2, 3`,
	`SELECT count(*) FROM tgflow.posts p LEFT JOIN tgflow.post_embeddings e USING (channel_id, message_id)
	   WHERE p.deleted_at IS NULL AND e.channel_id IS NULL`,
}

func firstDiff(a, b []string) string {
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			return "faulted has " + b[i]
		case i >= len(b):
			return "fault-free has " + a[i]
		case a[i] != b[i]:
			return a[i] + " ≠ " + b[i]
		}
	}
	return "none"
}

type runResult struct {
	digest projections.Digest
	facts  map[string]int
	rows   map[string][]string
}

func runCorpus(t *testing.T, bins map[string]string, corpus *proctest.Corpus, faults bool) runResult {
	label := map[bool]string{true: "faulted", false: "fault-free"}[faults]
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+time.Duration(len(corpus.Facts))*100*time.Millisecond)
	defer cancel()
	srv := proctest.StartServer(t, bins["nats"], dir)
	pgURL := testenv.NewPostgresDB(t)
	env := append(os.Environ(),
		"TGFLOW_NATS_URL="+srv.URLs(), "TGFLOW_POSTGRES_URL="+pgURL, "TGFLOW_EMBEDDER=hashing",
		"TGFLOW_HTTP_ADDR=", "TGFLOW_FETCH_ALLOW_CIDRS=127.0.0.0/8", "TGFLOW_LOG_LEVEL=info")
	proctest.Run(t, ctx, bins["tgflow"], env, "nats", "apply")
	proctest.Run(t, ctx, bins["tgflow"], env, "migrate", "up")
	_, js := srv.Connect(t)
	media, err := js.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	for key, b := range corpus.Images {
		if _, err := media.PutBytes(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	procs := map[string]*proctest.Proc{}
	for _, s := range faultServices {
		p := proctest.NewProc(t, dir, s, bins["tgflow"], []string{s}, append(slices.Clone(env), "TGFLOW_DATA_DIR="+dir+"/"+s))
		p.Start(t)
		procs[s] = p
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var recoveries []string
	kills := 0
	if faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(len(corpus.Facts)), 1))
			natsRestarted := false
			order := slices.Clone(faultServices)
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(700+r.IntN(800)) * time.Millisecond):
				}
				if !natsRestarted && kills == len(faultServices) {
					natsRestarted = true
					srv.Nodes[0].Kill()
					time.Sleep(time.Second)
					srv.Nodes[0].Start(t)
					recoveries = append(recoveries, "nats-server restarted")
					continue
				}
				// Every service is killed once (in a shuffled order), then at random.
				name := faultServices[r.IntN(len(faultServices))]
				if kills < len(order) {
					name = order[kills]
				}
				procs[name].Kill()
				kills++
				time.Sleep(time.Duration(100+r.IntN(600)) * time.Millisecond)
				procs[name].Start(t)
				recoveries = append(recoveries, fmt.Sprintf("%s restarted (%s)", name, progressAfter(ctx, js, name)))
			}
		}()
	}

	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(corpus.Facts); i += 25 {
		batch := corpus.Facts[i:min(i+25, len(corpus.Facts))]
		for attempt := 1; ; attempt++ {
			actx, c := context.WithTimeout(ctx, 5*time.Second)
			dups, err := pub.Publish(actx, batch)
			c()
			if err == nil {
				if dups > 0 && attempt == 1 {
					t.Fatalf("%d of a first publish were duplicates: the corpus repeats an event id", dups)
				}
				break
			}
			if attempt == 60 {
				t.Fatalf("publish: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // spread the feed over the faults
	}
	if faults {
		time.Sleep(10 * time.Second) // faults go on after the last publish
		close(stop)
		wg.Wait()
		t.Logf("%s: %d service kills; %s", label, kills, strings.Join(recoveries, "; "))
	}

	consumers := map[string]bool{}
	for _, s := range faultServices {
		consumers[consumerOf(s)] = true
	}
	// Settled: nothing pending or unacknowledged on any consumer for 3 s (stages publish
	// after acking their inputs' work, so one idle look is not enough).
	var idleSince time.Time
	var state []string
	for deadline := time.Now().Add(6*time.Minute + time.Duration(len(corpus.Facts))*50*time.Millisecond); ; {
		state = state[:0]
		busy := false
		for c := range consumers {
			cons, err := js.Consumer(ctx, topology.LogStream, c)
			if err != nil {
				state, busy = append(state, c+": "+err.Error()), true
				continue
			}
			info, err := cons.Info(ctx)
			if err != nil {
				state, busy = append(state, c+": "+err.Error()), true
				continue
			}
			state = append(state, fmt.Sprintf("%s: pending %d, ack pending %d, redelivered %d, ack floor %d, delivered %d",
				c, info.NumPending, info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream, info.Delivered.Stream))
			busy = busy || info.NumPending > 0 || info.NumAckPending > 0
		}
		if busy {
			idleSince = time.Time{}
		} else if idleSince.IsZero() {
			idleSince = time.Now()
		}
		if !idleSince.IsZero() && time.Since(idleSince) > 3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(state)
			t.Fatalf("%s: consumers still busy at the deadline:\n%s", label, strings.Join(state, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	for name, p := range procs {
		if len(p.Exits) > 0 {
			t.Errorf("%s: %s exited on its own: %v", label, name, p.Exits)
		}
	}
	dlq, err := js.Stream(ctx, topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if di, err := dlq.Info(ctx); err != nil {
		t.Fatal(err)
	} else if di.State.Msgs != 0 {
		t.Errorf("%s: DLQ holds %d messages, want 0", label, di.State.Msgs)
	}
	// Only the topology's durable consumers stay: every service stops now (a clean stop
	// deletes its log readers at once; those of SIGKILLed processes expire after a minute).
	for _, p := range procs {
		p.Stop(30 * time.Second)
	}
	logStream, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, c := range topology.Consumers() {
		want[c.Name] = true
	}
	var extra []string
	natstest.Eventually(t, 90*time.Second, label+": the log has exactly the topology's consumers", func() bool {
		extra = extra[:0]
		n := 0
		lister := logStream.ListConsumers(ctx)
		for ci := range lister.Info() {
			if want[ci.Name] {
				n++
			} else {
				extra = append(extra, ci.Name)
			}
		}
		return lister.Err() == nil && n == len(want) && len(extra) == 0
	})
	out := proctest.Run(t, ctx, bins["tgflow"], env, "projections", "verify", "postgres")
	t.Logf("%s: %s", label, strings.TrimSpace(out))

	pool, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	proj, err := postgres.New(ctx, pool, "tgflow")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := proj.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := runResult{digest: snap.Digest(), facts: map[string]int{}, rows: map[string][]string{}}
	for _, q := range surviving {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			res.rows[q] = append(res.rows[q], fmt.Sprint(vals...))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if lost := res.rows[surviving[len(surviving)-1]]; len(lost) != 1 || lost[0] != "0" {
		t.Errorf("%s: posts not deleted but without an embedding: %v", label, lost)
	}
	for _, spec := range events.Specs() {
		res.facts[spec.Subject] = natstest.Count(t, js, spec.Subject+".>")
	}
	if got := res.facts["posts.parsed"]; got != corpus.Posts {
		t.Errorf("%s: %d posts.parsed on the log, want %d", label, got, corpus.Posts)
	}
	t.Logf("%s: facts %v", label, res.facts)
	return res
}

// consumerOf is the durable consumer a service reads.
func consumerOf(service string) string {
	if service == "proj-postgres" {
		return topology.ConsumerProjPostgres
	}
	return service
}

// progressAfter is how long the consumer of a restarted service took to make progress, or
// why it was not measured. A projector applies in log order, so its progress is its ack
// floor moving (it first needs the facts its killed predecessor held); a stage's is the
// count of delivered and acknowledged facts growing (it needs none of its predecessor's).
func progressAfter(ctx context.Context, js jetstream.JetStream, service string) string {
	cons, err := js.Consumer(ctx, topology.LogStream, consumerOf(service))
	if err != nil {
		return "not measured: " + err.Error()
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return "not measured: " + err.Error()
	}
	if info.NumPending+uint64(info.NumAckPending) == 0 {
		return "idle"
	}
	projector := strings.HasPrefix(service, "proj-")
	done := func(i *jetstream.ConsumerInfo) uint64 { // facts handled so far, by the server's count
		if projector {
			return i.AckFloor.Stream
		}
		return i.Delivered.Consumer - uint64(i.NumAckPending)
	}
	before, start := done(info), time.Now()
	for time.Since(start) < time.Minute {
		time.Sleep(100 * time.Millisecond)
		if info, err = cons.Info(ctx); err == nil && done(info) > before {
			return "progress after " + time.Since(start).Round(100*time.Millisecond).String()
		}
	}
	return "no progress within 1m"
}
