package proctest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/logtail"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
)

// FaultServices run one process each in the fault run.
var FaultServices = []string{"vision", "tagger", "enricher", "embedder", "albums", "trends", "proj-postgres"}

// RunResult is what a run left: the Postgres model's digest, the fact count per subject,
// and the rows of the Surviving queries.
type RunResult struct {
	Label  string
	Digest projections.Digest
	Facts  map[string]int
	Rows   map[string][]string
	Kills  int
	// Recoveries says, per restart, how long the service took to make progress.
	Recoveries []string
}

// RunCorpus feeds corpus to every service of FaultServices, each its own process (bins
// "tgflow" and "nats" are the binaries), on a nats-server process of its own and the
// Postgres database at pgURL; with faults, services are SIGKILLed and restarted (each once,
// then at random) and the nats-server once, from the feed's start until it ended and at
// least minFaults passed. It waits until every consumer settled and checks what one run can
// check alone (DLQ empty, the topology's consumers only, verify equal, no Surviving post
// without an embedding); Compare checks two runs against each other.
func RunCorpus(t TB, bins map[string]string, corpus *Corpus, pgURL string, faults bool, minFaults time.Duration) RunResult {
	label := map[bool]string{true: "faulted", false: "fault-free"}[faults]
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour) // stalls are caught below; go test -timeout bounds a test
	defer cancel()
	srv := StartServer(t, bins["nats"], dir)
	env := append(os.Environ(),
		"TGFLOW_NATS_URL="+srv.URLs(), "TGFLOW_POSTGRES_URL="+pgURL, "TGFLOW_EMBEDDER=hashing",
		"TGFLOW_HTTP_ADDR=", "TGFLOW_FETCH_ALLOW_CIDRS=127.0.0.0/8", "TGFLOW_LOG_LEVEL=info")
	Run(t, ctx, bins["tgflow"], env, "nats", "apply")
	Run(t, ctx, bins["tgflow"], env, "migrate", "up")
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
	procs := map[string]*Proc{}
	for _, s := range FaultServices {
		p := NewProc(t, dir, s, bins["tgflow"], []string{s}, append(slices.Clone(env), "TGFLOW_DATA_DIR="+dir+"/"+s))
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
			order := slices.Clone(FaultServices)
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(700+r.IntN(800)) * time.Millisecond):
				}
				if !natsRestarted && kills == len(FaultServices) {
					natsRestarted = true
					srv.Nodes[0].Kill()
					time.Sleep(time.Second)
					srv.Nodes[0].Start(t)
					recoveries = append(recoveries, "nats-server restarted")
					continue
				}
				// Every service is killed once (in a shuffled order), then at random.
				name := FaultServices[r.IntN(len(FaultServices))]
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

	feedStart := time.Now()
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
		// Faults go on after the last publish, at least 10 s and until minFaults passed.
		time.Sleep(max(10*time.Second, minFaults-time.Since(feedStart)))
		close(stop)
		wg.Wait()
		t.Logf("%s: %d service kills; %s", label, kills, strings.Join(recoveries, "; "))
	}

	consumers := map[string]bool{}
	for _, s := range FaultServices {
		consumers[consumerOf(s)] = true
	}
	// Settled: nothing pending or unacknowledged on any consumer for 3 s (stages publish
	// after acking their inputs' work, so one idle look is not enough).
	var idleSince time.Time
	var state []string
	// A run fails when the consumers stop making progress (no ack floor moves for
	// stallAfter while work is pending), not after a fixed time: a loaded machine is slow,
	// a stalled consumer is stuck.
	const stallAfter = 3 * time.Minute
	lastProgress, lastFloors := time.Now(), uint64(0)
	for {
		state = state[:0]
		busy := false
		floors := uint64(0)
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
			floors += info.AckFloor.Stream + info.Delivered.Stream
		}
		if floors != lastFloors {
			lastProgress, lastFloors = time.Now(), floors
		}
		if busy {
			idleSince = time.Time{}
		} else if idleSince.IsZero() {
			idleSince = time.Now()
		}
		if !idleSince.IsZero() && time.Since(idleSince) > 3*time.Second {
			break
		}
		if time.Since(lastProgress) > stallAfter {
			sort.Strings(state)
			t.Fatalf("%s: no consumer made progress for %v with work pending:\n%s", label, stallAfter, strings.Join(state, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	for name, p := range procs {
		if e := p.Exited(); len(e) > 0 {
			t.Errorf("%s: %s exited on its own: %v", label, name, e)
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
	n := 0
	for deadline := time.Now().Add(logtail.InactiveThreshold + 30*time.Second); ; time.Sleep(time.Second) {
		extra, n = extra[:0], 0
		lister := logStream.ListConsumers(ctx)
		for ci := range lister.Info() {
			if want[ci.Name] {
				n++
			} else {
				extra = append(extra, fmt.Sprintf("%s (filters %v, inactive threshold %v, created %s)",
					ci.Name, ci.Config.FilterSubjects, ci.Config.InactiveThreshold, ci.Created.Format(time.RFC3339)))
			}
		}
		if lister.Err() == nil && n == len(want) && len(extra) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the log has %d of the topology's %d consumers and %d others a minute after every service stopped (a leak):\n%s",
				label, n, len(want), len(extra), strings.Join(extra, "\n"))
		}
	}
	out := Run(t, ctx, bins["tgflow"], env, "projections", "verify", "postgres")
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
	res := RunResult{Label: label, Digest: snap.Digest(), Facts: map[string]int{}, Rows: map[string][]string{}, Kills: kills, Recoveries: recoveries}
	for _, q := range Surviving {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			res.Rows[q] = append(res.Rows[q], fmt.Sprint(vals...))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if lost := res.Rows[Surviving[len(Surviving)-1]]; len(lost) != 1 || lost[0] != "0" {
		t.Errorf("%s: posts not deleted but without an embedding: %v", label, lost)
	}
	for _, spec := range events.Specs() {
		res.Facts[spec.Subject] = natstest.Count(t, js, spec.Subject+".>")
	}
	if got := res.Facts["posts.parsed"]; got != corpus.Posts {
		t.Errorf("%s: %d posts.parsed on the log, want %d", label, got, corpus.Posts)
	}
	t.Logf("%s: facts %v", label, res.Facts)
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

// Compare lists what differs between a fault-free run and a faulted one of the same corpus.
func Compare(clean, faulted RunResult) []string {
	var diffs []string
	// What the corpus alone decides is equal. Deletions race with the stages (a post deleted
	// before the tagger reached it is never tagged, which depends on timing), and pages and
	// images carry the time they were fetched or analysed, so those are compared on the
	// posts that survive and without those times.
	for _, name := range []string{"posts", "post_media", "album_items", "channels"} {
		if clean.Digest[name] != faulted.Digest[name] {
			diffs = append(diffs, fmt.Sprintf("Postgres %s: fault-free %+v, faulted %+v", name, clean.Digest[name], faulted.Digest[name]))
		}
	}
	for _, subj := range []string{"posts.parsed", "posts.edited", "posts.deleted", "albums.parsed", "albums.assembled", "posts.vision.analyzed"} {
		if clean.Facts[subj] != faulted.Facts[subj] {
			diffs = append(diffs, fmt.Sprintf("%s: %d facts fault-free, %d faulted", subj, clean.Facts[subj], faulted.Facts[subj]))
		}
	}
	for _, q := range Surviving {
		want := clean.Rows[q]
		got := faulted.Rows[q]
		if !slices.Equal(got, want) {
			diffs = append(diffs, fmt.Sprintf("%s:\nfault-free %d rows, faulted %d; first difference: %s", q, len(want), len(got), firstDiff(want, got)))
		}
	}
	return diffs
}

// Surviving are queries over the posts that were not deleted, on what the corpus alone
// decides: which posts have an embedding (and of which revision), which have tags, their
// pages' outcomes and their images' analyses. Tag names are not compared: the local tagger
// weighs words by the document frequencies it has seen so far, which depend on timing
// (and so does the embedder's input, which includes the tags).
var Surviving = []string{
	`SELECT p.channel_id, p.message_id, e.version, e.revision, e.dim FROM tgflow.posts p
	   JOIN tgflow.post_embeddings e USING (channel_id, message_id) WHERE p.deleted_at IS NULL ORDER BY 1, 2`,
	`SELECT DISTINCT p.channel_id, p.message_id FROM tgflow.posts p
	   JOIN tgflow.post_tags t USING (channel_id, message_id) WHERE p.deleted_at IS NULL ORDER BY 1, 2`,
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
