package neo4j_test

// Neo4j Community has one database, so every test of this package clears the whole graph:
// none of them calls t.Parallel, and no other package keeps data in the test server.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/neo4j"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

func newDriver(t testing.TB) nd.DriverWithContext {
	t.Helper()
	uri, user, password := testenv.Neo4j(t)
	auth := nd.NoAuth()
	if user != "" {
		auth = nd.BasicAuth(user, password, "")
	}
	d, err := nd.NewDriverWithContext(uri, auth)
	if err != nil {
		t.Fatalf("neo4j driver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	if err := d.VerifyConnectivity(context.Background()); err != nil {
		t.Fatalf("neo4j at %s: %v", uri, err)
	}
	return d
}

// clearGraph deletes every node and relationship of the database (constraints stay).
func clearGraph(t testing.TB, d nd.DriverWithContext) {
	t.Helper()
	// Relationships first: a node's DETACH DELETE takes all its relationships into one inner
	// transaction, too many for the harness's memory pool after the benchmark.
	run(t, d, `MATCH ()-[r]->() CALL { WITH r DELETE r } IN TRANSACTIONS OF 10000 ROWS`, nil)
	run(t, d, `MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS`, nil)
}

// run runs one auto-commit statement and returns its records.
func run(t testing.TB, d nd.DriverWithContext, cypher string, params map[string]any) []*nd.Record {
	t.Helper()
	ctx := context.Background()
	s := d.NewSession(ctx, nd.SessionConfig{})
	defer s.Close(ctx)
	res, err := s.Run(ctx, cypher, params)
	if err != nil {
		t.Fatalf("%s: %v", cypher, err)
	}
	recs, err := res.Collect(ctx)
	if err != nil {
		t.Fatalf("%s: %v", cypher, err)
	}
	return recs
}

// newProjection returns the projection over an empty graph.
func newProjection(t testing.TB, d nd.DriverWithContext) *neo4j.Projection {
	t.Helper()
	clearGraph(t, d)
	p, err := neo4j.New(context.Background(), d, neo4j.Options{})
	if err != nil {
		t.Fatalf("neo4j.New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func apply(t testing.TB, p projections.Projection, facts []projections.Fact, size int) {
	t.Helper()
	projectiontest.ApplyBatches(t, p, facts, size)
}

func snapshot(t testing.TB, p projections.Projection) projections.Snapshot {
	t.Helper()
	return projectiontest.Snap(t, p)
}

func assertSame(t testing.TB, want, got projections.Snapshot) {
	t.Helper()
	projectiontest.AssertSame(t, want, got)
}

// node is one node line of a snapshot: its ref and properties.
type node struct {
	ref   string
	props map[string]any
}

// edge is one relationship line of a snapshot.
type edge struct {
	from, to string
	props    map[string]any
}

func nodes(t testing.TB, snap projections.Snapshot, label string) map[string]node {
	t.Helper()
	lines, ok := snap[label]
	if !ok {
		t.Fatalf("snapshot has no section %q", label)
	}
	out := map[string]node{}
	for _, l := range lines {
		ref, js, ok := strings.Cut(l, "\t")
		if !ok {
			t.Fatalf("%s: bad line %q", label, l)
		}
		out[ref] = node{ref: ref, props: decode(t, js)}
	}
	return out
}

func edges(t testing.TB, snap projections.Snapshot, typ string) []edge {
	t.Helper()
	lines, ok := snap[typ]
	if !ok {
		t.Fatalf("snapshot has no section %q", typ)
	}
	var out []edge
	for _, l := range lines {
		parts := strings.SplitN(l, "\t", 3)
		if len(parts) != 3 {
			t.Fatalf("%s: bad line %q", typ, l)
		}
		out = append(out, edge{from: parts[0], to: parts[1], props: decode(t, parts[2])})
	}
	return out
}

// edgesFrom returns the edges of typ leaving ref.
func edgesFrom(t testing.TB, snap projections.Snapshot, typ, ref string) []edge {
	t.Helper()
	var out []edge
	for _, e := range edges(t, snap, typ) {
		if e.from == ref {
			out = append(out, e)
		}
	}
	return out
}

func decode(t testing.TB, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("bad JSON %q: %v", js, err)
	}
	return m
}

// one returns the node ref of label, failing if it is missing.
func one(t testing.TB, snap projections.Snapshot, label, ref string) map[string]any {
	t.Helper()
	n, ok := nodes(t, snap, label)[ref]
	if !ok {
		t.Fatalf("no node %s; %s nodes: %v", ref, label, snap[label])
	}
	return n.props
}

// field asserts a property; want nil means absent. Numbers compare as float64 (JSON).
func field(t testing.TB, what string, props map[string]any, key string, want any) {
	t.Helper()
	got, ok := props[key]
	switch w := want.(type) {
	case nil:
		if ok {
			t.Errorf("%s.%s = %v, want absent", what, key, got)
		}
		return
	case int:
		want = float64(w)
	case int64:
		want = float64(w)
	}
	if !ok {
		t.Errorf("%s.%s is absent, want %v", what, key, want)
		return
	}
	if gj, wj := mustJSON(got), mustJSON(want); gj != wj {
		t.Errorf("%s.%s = %s, want %s", what, key, gj, wj)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
