package migrations_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/migrations"
)

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func tables(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestUpTwiceIsANoOp(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	latest, err := migrations.Latest()
	if err != nil || latest < 1 {
		t.Fatalf("Latest = %d, %v", latest, err)
	}

	first, err := migrations.UpResults(ctx, pool, "tgflow")
	if err != nil {
		t.Fatalf("first up: %v", err)
	}
	if len(first) == 0 || first[len(first)-1].Version != latest {
		t.Fatalf("first up applied %v, want up to version %d", first, latest)
	}
	before := tables(t, pool, "tgflow")
	second, err := migrations.UpResults(ctx, pool, "tgflow")
	if err != nil || len(second) != 0 {
		t.Fatalf("second up applied %v, %v; want nothing", second, err)
	}
	if after := tables(t, pool, "tgflow"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("tables changed: %v → %v", before, after)
	}
	for _, want := range []string{migrations.VersionTable, "posts", "channels", "pipeline_progress", "projection_checkpoints"} {
		if !strings.Contains(","+strings.Join(before, ",")+",", ","+want+",") {
			t.Errorf("table %s missing from schema tgflow: %v", want, before)
		}
	}
	if pub := tables(t, pool, "public"); len(pub) != 0 {
		t.Errorf("migrations leaked into public: %v", pub)
	}

	var out bytes.Buffer
	if err := migrations.Status(ctx, pool, "tgflow", &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("status:\n%s", out.String())
	for _, want := range []string{"schema tgflow", "00001_read_schema.sql", "applied"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "pending") {
		t.Errorf("status shows pending migrations after up:\n%s", out.String())
	}
}

func TestSchemasAreIndependent(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)

	st, err := migrations.StatusOf(ctx, pool, "tgflow_shadow")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) == 0 || st[0].Applied {
		t.Fatalf("status of a missing schema = %+v, want all pending", st)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tgflow_shadow')`).Scan(&exists); err != nil || exists {
		t.Fatalf("status created the schema (%v, %v)", exists, err)
	}

	for _, s := range []string{"tgflow", "tgflow_shadow"} {
		if err := migrations.Up(ctx, pool, s); err != nil {
			t.Fatalf("up %s: %v", s, err)
		}
	}
	a, b := tables(t, pool, "tgflow"), tables(t, pool, "tgflow_shadow")
	if len(a) == 0 || strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("schemas differ: %v vs %v", a, b)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM tgflow_shadow.goose_db_version WHERE version_id > 0`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("shadow version table: %d rows, %v", n, err)
	}
}

func TestValidateSchema(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		ok     bool
	}{
		{name: "live", schema: "tgflow", ok: true},
		{name: "shadow", schema: "tgflow_shadow", ok: true},
		{name: "upper case", schema: "TgFlow"},
		{name: "quote", schema: `tg"flow`},
		{name: "dash", schema: "tg-flow"},
		{name: "public", schema: "public"},
		{name: "catalog", schema: "pg_catalog"},
		{name: "empty", schema: ""},
		{name: "too long", schema: strings.Repeat("a", 41)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := migrations.ValidateSchema(tc.schema)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, migrations.ErrSchemaName) {
				t.Fatalf("ValidateSchema(%q) = %v", tc.schema, err)
			}
		})
	}
}
