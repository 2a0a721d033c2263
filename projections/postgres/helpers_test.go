package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

// newPool returns a pool on a fresh database that is dropped when the test ends.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := testenv.NewPostgresDB(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the database drop registered by NewPostgresDB
	return pool
}

func newProjection(t testing.TB, pool *pgxpool.Pool, schema string) *postgres.Projection {
	t.Helper()
	p, err := postgres.New(context.Background(), pool, schema)
	if err != nil {
		t.Fatalf("postgres.New(%s): %v", schema, err)
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

// row is one snapshot line decoded.
type row map[string]any

func rowsOf(t testing.TB, snap projections.Snapshot, table string) []row {
	t.Helper()
	lines, ok := snap[table]
	if !ok {
		t.Fatalf("snapshot has no section %q", table)
	}
	out := make([]row, 0, len(lines))
	for _, l := range lines {
		var r row
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%s: bad line %q: %v", table, l, err)
		}
		out = append(out, r)
	}
	return out
}

// where returns the rows whose fields equal the given values (numbers compared as float64).
func where(rows []row, kv ...any) []row {
	var out []row
next:
	for _, r := range rows {
		for i := 0; i+1 < len(kv); i += 2 {
			if !equal(r[kv[i].(string)], kv[i+1]) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

func one(t testing.TB, rows []row, what string, kv ...any) row {
	t.Helper()
	got := where(rows, kv...)
	if len(got) != 1 {
		t.Fatalf("%s: %d rows match %v, want 1", what, len(got), kv)
	}
	return got[0]
}

func equal(a, b any) bool {
	switch x := b.(type) {
	case int:
		f, ok := a.(float64)
		return ok && f == float64(x)
	case int64:
		f, ok := a.(float64)
		return ok && f == float64(x)
	case nil:
		return a == nil
	}
	return a == b
}

func field(t testing.TB, r row, name string, want any) {
	t.Helper()
	if got := r[name]; !equal(got, want) {
		t.Errorf("%s = %#v, want %#v (row %v)", name, got, want, r)
	}
}

// withReference returns a fresh database, the contract script, and the snapshot of the
// script applied normally to a schema of its own ("reference"): what every rebuild path
// must end equal to.
func withReference(t testing.TB) (*pgxpool.Pool, projectiontest.Script, projections.Snapshot) {
	t.Helper()
	pool := newPool(t)
	s := projectiontest.NewScript()
	ref := newProjection(t, pool, "reference")
	apply(t, ref, s.Facts, 3)
	return pool, s, snapshot(t, ref)
}
