// Package projsvctest drives the projection services in tests: each backend opened from a
// test environment over an empty model, the contract script published to a log, and changes
// made to a live model behind its projector's back (the drift `tgflow projections verify`
// must report).
package projsvctest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
	"github.com/tgflow/tgflow/services/projsvc"
)

// Backend is one projection as a test opens it.
type Backend struct {
	// Name is the projection's name (projsvc.LookupBackend).
	Name     string
	Consumer string
	// Env returns the environment that opens the backend over a fresh, empty model.
	Env func(t *testing.T) map[string]string
	// Drifts change the live model opened with env behind its projector's back.
	Drifts []Drift
}

// Drift is one change of a live model that no fact of the log made.
type Drift struct {
	Name string
	// Section is the snapshot section the change shows in (and the only one).
	Section string
	Apply   func(t *testing.T, env map[string]string)
}

// Backends lists the three projections in projsvc.Backends order.
func Backends() []Backend {
	return []Backend{
		{Name: "postgres", Consumer: topology.ConsumerProjPostgres, Env: postgresEnv, Drifts: []Drift{
			{Name: "a post's text", Section: "posts", Apply: postgresExec(`UPDATE posts SET text = coalesce(text, '') || ' [drift]'
WHERE (channel_id, message_id) = (SELECT channel_id, message_id FROM posts WHERE text IS NOT NULL ORDER BY 1, 2 LIMIT 1)`)},
			{Name: "a tag", Section: "post_tags", Apply: postgresExec(`UPDATE post_tags SET tag = tag || '-drift'
WHERE (channel_id, message_id, tag) = (SELECT channel_id, message_id, tag FROM post_tags ORDER BY 1, 2, 3 LIMIT 1)`)},
		}},
		{Name: "qdrant", Consumer: topology.ConsumerProjQdrant, Env: qdrantEnv, Drifts: []Drift{
			{Name: "a point's payload", Section: qdrant.SectionPoints, Apply: qdrantDrift(func(p *qd.RetrievedPoint) *qd.PointStruct {
				pl := p.GetPayload()
				pl["text"] = qd.NewValueString("[drift]")
				return &qd.PointStruct{Id: p.GetId(), Vectors: qd.NewVectorsDense(vectorOf(p)), Payload: pl}
			})},
			{Name: "a point's vector", Section: qdrant.SectionPoints, Apply: qdrantDrift(func(p *qd.RetrievedPoint) *qd.PointStruct {
				v := vectorOf(p)
				slices.Reverse(v)
				v[0] += 1
				return &qd.PointStruct{Id: p.GetId(), Vectors: qd.NewVectorsDense(v), Payload: p.GetPayload()}
			})},
		}},
		{Name: "neo4j", Consumer: topology.ConsumerProjNeo4j, Env: neo4jEnv, Drifts: []Drift{
			{Name: "an edge", Section: "TAGGED", Apply: neo4jExec(`MATCH (:Post)-[r:TAGGED]->(:Tag) WITH r ORDER BY r.version, r.position LIMIT 1 DELETE r`)},
			{Name: "a post's text", Section: "Post", Apply: neo4jExec(`MATCH (p:Post) WHERE p.text IS NOT NULL WITH p ORDER BY p.key LIMIT 1 SET p.text = p.text + ' [drift]'`)},
		}},
	}
}

// Open opens b's live projection from env.
func Open(t *testing.T, name string, env map[string]string) (projections.Rebuilder, func()) {
	t.Helper()
	b, ok := projsvc.LookupBackend(name)
	if !ok {
		t.Fatalf("no backend %q", name)
	}
	p, _, closeFn, err := b.Open(context.Background(), env, logx.Discard())
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return p, closeFn
}

// PublishScript writes facts to the log, in order.
func PublishScript(t *testing.T, js jetstream.JetStream, facts []projections.Fact) {
	t.Helper()
	for _, f := range facts {
		Publish(t, js, f.Event)
	}
}

// Publish writes one event to the log and returns its sequence.
func Publish(t *testing.T, js jetstream.JetStream, ev events.Event) uint64 {
	t.Helper()
	h, body, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := ev.NATSSubject(events.Default)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
	m.Header.Set(nats.MsgIdHdr, ev.ID)
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// ApplyConsumed applies, one fact per batch, the facts the consumer's filters let through:
// the model a live projector builds from them.
func ApplyConsumed(t *testing.T, p projections.Projection, consumer string, facts []projections.Fact) {
	t.Helper()
	c, ok := topology.LookupConsumer(consumer)
	if !ok {
		t.Fatalf("no consumer %q", consumer)
	}
	for _, f := range facts {
		if !slices.Contains(c.Inputs, f.Event.Type) {
			continue
		}
		if err := p.Apply(context.Background(), []projections.Fact{f}); err != nil {
			t.Fatalf("apply seq %d: %v", f.Seq, err)
		}
	}
}

func postgresEnv(t *testing.T) map[string]string {
	return map[string]string{"TGFLOW_POSTGRES_URL": testenv.NewPostgresDB(t)}
}

// postgresExec runs one statement in the live schema; it must change exactly one row.
func postgresExec(sql string) func(t *testing.T, env map[string]string) {
	return func(t *testing.T, env map[string]string) {
		t.Helper()
		var cfg projsvc.PostgresConfig
		if err := config.Load(&cfg, env); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, cfg.URL.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `SELECT set_config('search_path', $1, false)`, cfg.Schema); err != nil {
			t.Fatal(err)
		}
		tag, err := conn.Exec(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if tag.RowsAffected() != 1 {
			t.Fatalf("%s changed %d rows, want 1", sql, tag.RowsAffected())
		}
	}
}

var aliasSeq atomic.Int64

// qdrantEnv names an alias of its own on the test's Qdrant; the collections the test creates
// behind it are deleted when it ends (a real server is shared: hundreds of leftover
// collections exhaust its memory maps).
func qdrantEnv(t *testing.T) map[string]string {
	addr, _ := qdranttest.Addr(t)
	alias := fmt.Sprintf("posts_t%d_%d", time.Now().UnixNano(), aliasSeq.Add(1))
	t.Cleanup(func() { dropQdrant(t, addr, alias) })
	return map[string]string{"TGFLOW_QDRANT_ADDR": addr, "TGFLOW_QDRANT_ALIAS": alias,
		// The embedder whose vector space the contract script's embeddings are in (the
		// projection keeps only that space). Nothing is dialled.
		"TGFLOW_EMBEDDER": "openai", "TGFLOW_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
		"TGFLOW_OPENAI_EMBED_MODEL": projectiontest.EmbedModel, "TGFLOW_OPENAI_EMBED_DIM": fmt.Sprint(projectiontest.Dim)}
}

// dropQdrant deletes the alias and every collection whose name holds it (the data
// collections and the meta collection of the projection behind it).
func dropQdrant(t *testing.T, addr, alias string) {
	t.Helper()
	c, err := qdrant.Dial(addr)
	if err != nil {
		t.Errorf("clean up Qdrant alias %s: %v", alias, err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.DeleteAlias(ctx, alias); err != nil {
		t.Logf("clean up Qdrant alias %s: %v", alias, err) // none was created
	}
	names, err := c.ListCollections(ctx)
	if err != nil {
		t.Errorf("clean up Qdrant alias %s: %v", alias, err)
		return
	}
	for _, n := range names {
		if strings.Contains(n, alias) {
			if err := c.DeleteCollection(ctx, n); err != nil {
				t.Errorf("clean up Qdrant collection %s: %v", n, err)
			}
		}
	}
}

// qdrantDrift rewrites the first point of the live collection (through its alias) with what
// change makes of it.
func qdrantDrift(change func(*qd.RetrievedPoint) *qd.PointStruct) func(t *testing.T, env map[string]string) {
	return func(t *testing.T, env map[string]string) {
		t.Helper()
		var cfg projsvc.QdrantConfig
		if err := config.Load(&cfg, env); err != nil {
			t.Fatal(err)
		}
		c, err := qdrant.Dial(cfg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		info, err := projsvc.EmbedderSpace(cfg.Embedder)
		if err != nil {
			t.Fatal(err)
		}
		alias := qdrant.AliasFor(cfg.Alias, projsvc.SpaceOf(info))
		ctx := context.Background()
		pts, err := c.Scroll(ctx, &qd.ScrollPoints{CollectionName: alias, Limit: qd.PtrOf(uint32(1)),
			WithPayload: qd.NewWithPayload(true), WithVectors: qd.NewWithVectors(true)})
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) != 1 {
			t.Fatalf("live collection %s has no point", alias)
		}
		if _, err := c.Upsert(ctx, &qd.UpsertPoints{CollectionName: alias, Wait: qd.PtrOf(true),
			Points: []*qd.PointStruct{change(pts[0])}}); err != nil {
			t.Fatal(err)
		}
	}
}

// vectorOf returns a copy of the point's dense vector.
func vectorOf(p *qd.RetrievedPoint) []float32 {
	v := p.GetVectors().GetVector()
	if d := v.GetDense(); d != nil {
		return slices.Clone(d.GetData())
	}
	//lint:ignore SA1019 servers before Qdrant 1.13 answer in the deprecated data field
	return slices.Clone(v.GetData())
}

func neo4jEnv(t *testing.T) map[string]string {
	uri, user, pw := testenv.Neo4j(t)
	env := map[string]string{"TGFLOW_NEO4J_URI": uri, "TGFLOW_NEO4J_USER": user, "TGFLOW_NEO4J_PASSWORD": pw}
	neo4jRun(t, env, `MATCH (n) DETACH DELETE n`) // Community has one graph: start empty
	return env
}

// neo4jExec runs one statement against the graph of env; it must change something.
func neo4jExec(cypher string) func(t *testing.T, env map[string]string) {
	return func(t *testing.T, env map[string]string) {
		t.Helper()
		if !neo4jRun(t, env, cypher).ContainsUpdates() {
			t.Fatalf("%s changed nothing", cypher)
		}
	}
}

func neo4jRun(t *testing.T, env map[string]string, cypher string) nd.Counters {
	t.Helper()
	var cfg projsvc.Neo4jConfig
	if err := config.Load(&cfg, env); err != nil {
		t.Fatal(err)
	}
	auth := nd.NoAuth()
	if cfg.User != "" {
		auth = nd.BasicAuth(cfg.User, cfg.Password.Reveal(), "")
	}
	ctx := context.Background()
	d, err := nd.NewDriverWithContext(cfg.URI, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	res, err := nd.ExecuteQuery(ctx, d, cypher, nil, nd.EagerResultTransformer)
	if err != nil {
		t.Fatalf("%s: %v", cypher, err)
	}
	return res.Summary.Counters()
}
