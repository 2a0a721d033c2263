package proctest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/cmd/tgflow/internal/proctest"
	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
)

// stages run as two instances each, on the same durable consumers; trends (its windows are
// in memory) and the Postgres projector are single-writer and run once.
var stages = []string{"tagger", "enricher", "embedder", "vision", "albums", "trends"}

// single are the services that run one instance.
var single = map[string]bool{"trends": true, "proj-postgres": true}

// TestClusterLeaderKilledMidRun: the topology applied with TGFLOW_STREAM_REPLICAS=3 on a
// 3-node cluster of nats-server processes; every stage that scales out runs as two
// processes, trends and the Postgres projector as one; posts are published while the log's stream leader is
// SIGKILLed (and later restarted). Every post reaches the read model exactly once and every
// stage's fact is on the log exactly once per post; the DLQ stays empty.
func TestClusterLeaderKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster and 13 service processes")
	}
	pgURL := testenv.NewPostgresDB(t)
	dir := t.TempDir()
	tgflow := proctest.Build(t, dir, "github.com/tgflow/tgflow/cmd/tgflow")
	natsServer := proctest.Build(t, dir, "github.com/nats-io/nats-server/v2")
	cl := proctest.StartCluster(t, natsServer, dir, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	base := append(os.Environ(),
		"TGFLOW_NATS_URL="+cl.URLs(),
		"TGFLOW_STREAM_REPLICAS=3",
		"TGFLOW_POSTGRES_URL="+pgURL,
		"TGFLOW_EMBEDDER=hashing",
		"TGFLOW_HTTP_ADDR=",
		"TGFLOW_LOG_LEVEL=info",
	)
	out := proctest.Run(t, ctx, tgflow, base, "nats", "apply")
	t.Logf("tgflow nats apply:\n%s", out)
	proctest.Run(t, ctx, tgflow, base, "migrate", "up")

	_, js := cl.Connect(t)
	st, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("log stream: replicas %d, cluster %+v; want 3 (a leader and 2 peers)", info.Config.Replicas, info.Cluster)
	}
	for _, kv := range topology.KeyValues() {
		kvs, err := js.KeyValue(ctx, kv.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		s, err := kvs.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
			t.Fatalf("bucket %s is not replicated 3 times", kv.Bucket)
		}
	}

	var procs []*proctest.Proc
	// The projector is given only the node that leads the log (it learns the others from the
	// cluster), so the kill below cuts its connection while facts are being delivered to it:
	// deliveries are lost in transit, which it must fill from the log (nats/worker resync).
	// Connected elsewhere, it would see the failover only one run in three.
	firstLeader := streamLeader(t, ctx, js)
	for _, s := range append(stages, "proj-postgres") {
		n := 2
		if single[s] {
			n = 1
		}
		for i := range n {
			name := fmt.Sprintf("%s-%d", s, i+1)
			env := append(append([]string{}, base...), "TGFLOW_DATA_DIR="+dir+"/"+name)
			if s == "proj-postgres" {
				env = append(env, "TGFLOW_NATS_URL="+cl.Node(firstLeader).URL())
			}
			p := proctest.NewProc(t, dir, name, tgflow, []string{s}, env)
			p.Start(t)
			procs = append(procs, p)
		}
	}

	const posts = 600
	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	var killed *proctest.Node
	for i := range posts {
		if i == posts/3 {
			leader := streamLeader(t, ctx, js)
			killed = cl.Node(leader)
			if killed == nil {
				t.Fatalf("stream leader %q is not a node of the cluster", leader)
			}
			t.Logf("post %d: SIGKILL the log's stream leader %s", i, leader)
			killed.Kill()
		}
		if i == 2*posts/3 {
			t.Logf("post %d: restart %s", i, killed.ServerName)
			killed.Start(t)
		}
		ch := events.ChannelID(1000 + i%7)
		p := events.Post{
			PostRef: events.PostRef{ChannelID: ch, MessageID: int64(i + 1)}, ChannelUsername: fmt.Sprintf("chan%d", ch),
			Date: t0.Add(time.Duration(i) * time.Second),
			Text: fmt.Sprintf("Пост номер %d о кластере NATS: лидер потока упал, реплики выбрали нового. Post %d about a JetStream cluster failover and replicated streams.", i, i),
		}
		publishRetrying(t, ctx, pub, events.PostEvent(&events.PostParsed{Post: p}))
	}
	if leader := streamLeader(t, ctx, js); leader == killed.ServerName {
		t.Logf("the restarted %s is leader again", leader)
	}

	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	count := func(table string) int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM tgflow."+table).Scan(&n); err != nil {
			t.Logf("count %s: %v", table, err)
			return -1
		}
		return n
	}
	// exited names the services that exited by themselves: nothing restarts them here, so the
	// pipeline would stall behind them (CI once waited 5 minutes behind two dead taggers).
	exited := func() []string {
		var out []string
		for _, p := range procs {
			if e := p.Exited(); len(e) > 0 {
				out = append(out, fmt.Sprintf("%s %v", p.Name, e))
			}
		}
		return out
	}
	for deadline := time.Now().Add(5 * time.Minute); count("post_embeddings") != posts; time.Sleep(200 * time.Millisecond) {
		dead := exited()
		if len(dead) == 0 && time.Now().Before(deadline) {
			continue
		}
		// Where it stopped: each consumer's state and the read model's counts.
		for _, name := range []string{"vision", "tagger", "enricher", "embedder", "albums", "trends", topology.ConsumerProjPostgres} {
			c, err := js.Consumer(ctx, topology.LogStream, name)
			if err != nil {
				t.Logf("consumer %s: %v", name, err)
				continue
			}
			ci, err := c.Info(ctx)
			if err != nil {
				t.Logf("consumer %s: %v", name, err)
				continue
			}
			t.Logf("consumer %s: pending %d, ack pending %d, redelivered %d, waiting pulls %d, delivered %d, ack floor %d, leader %s",
				name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Delivered.Stream, ci.AckFloor.Stream, clusterLeader(ci))
		}
		for _, subj := range []string{"posts.parsed.>", "posts.tagged.>", "posts.enriched.>", "posts.embedded.>"} {
			t.Logf("%s: %d facts", subj, natstest.Count(t, js, subj))
		}
		if len(dead) > 0 {
			t.Fatalf("services exited by themselves: %v; %d posts, %d embeddings in Postgres, want %d", dead, count("posts"), count("post_embeddings"), posts)
		}
		t.Fatalf("after 5 min: %d posts, %d embeddings in Postgres, want %d", count("posts"), count("post_embeddings"), posts)
	}

	var distinct int
	if err := conn.QueryRow(ctx, "SELECT count(DISTINCT (channel_id, message_id)) FROM tgflow.posts").Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if n := count("posts"); n != posts || distinct != posts {
		t.Errorf("posts: %d rows, %d distinct, want %d", n, distinct, posts)
		rows, err := conn.Query(ctx, `SELECT e.channel_id, e.message_id FROM tgflow.post_embeddings e
			LEFT JOIN tgflow.posts p USING (channel_id, message_id) WHERE p.channel_id IS NULL`)
		if err == nil {
			for rows.Next() {
				var ch, msg int64
				if rows.Scan(&ch, &msg) == nil {
					t.Errorf("post %d/%d has an embedding but no posts row", ch, msg)
				}
			}
			rows.Close()
		}
		var cp int64
		if err := conn.QueryRow(ctx, "SELECT max(seq) FROM tgflow.projection_checkpoints").Scan(&cp); err == nil {
			t.Logf("projection checkpoint %d", cp)
		}
	}
	for _, subj := range []string{"posts.parsed.>", "posts.tagged.>", "posts.enriched.>", "posts.embedded.>"} {
		if n := natstest.Count(t, js, subj); n != posts {
			t.Errorf("%s: %d facts on the log, want exactly %d (one per post)", subj, n, posts)
		}
	}
	dlq, err := js.Stream(ctx, topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if di, err := dlq.Info(ctx); err != nil {
		t.Fatal(err)
	} else if di.State.Msgs != 0 {
		t.Errorf("DLQ holds %d messages, want 0", di.State.Msgs)
	}
	if dead := exited(); len(dead) > 0 {
		t.Errorf("services exited by themselves: %v", dead)
	}
	// What the failover cost the projector: deliveries it never received, filled from the log.
	for _, p := range procs {
		if p.Name != "proj-postgres-1" {
			continue
		}
		b, err := os.ReadFile(p.Log)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "deliveries missing") || strings.Contains(line, "filling the gap") || strings.Contains(line, "never applied") {
				t.Logf("%s: %s", p.Name, strings.TrimSpace(line))
			}
		}
	}
}

func clusterLeader(ci *jetstream.ConsumerInfo) string {
	if ci.Cluster == nil {
		return "?"
	}
	return ci.Cluster.Leader
}

func streamLeader(t *testing.T, ctx context.Context, js jetstream.JetStream) string {
	t.Helper()
	var leader string
	natstest.Eventually(t, time.Minute, "the log stream has a leader", func() bool {
		st, err := js.Stream(ctx, topology.LogStream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != ""
	})
	return leader
}

// publishRetrying publishes ev until the log acknowledges it: during a leader election a
// publish fails or times out, and publishing the same fact again is safe (its id).
func publishRetrying(t *testing.T, ctx context.Context, pub *publish.Publisher, ev events.Event) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := pub.Publish(actx, []events.Event{ev})
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil || attempt == 60 {
			t.Fatalf("publish %s: %v (attempt %d)", ev.Subject, err, attempt)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("publish %s: %v (attempt %d); again", ev.Subject, err, attempt)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
