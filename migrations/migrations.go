// Package migrations holds the versioned SQL of the Postgres read model, embedded in the
// binary, and applies it with goose into one schema at a time.
//
// The SQL never names a schema: Up creates the schema and runs goose on connections whose
// search_path is that schema only, so the same files build the live schema (tgflow) and a
// rebuild's shadow schema (tgflow_shadow). goose's version table lives in the same schema, so
// a schema carries its own migration history wherever it is renamed to.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// FS holds the migration files, named <version>_<name>.sql.
//
//go:embed *.sql
var FS embed.FS

// VersionTable is goose's version table, created in the migrated schema.
const VersionTable = "goose_db_version"

// ErrSchemaName is returned for a schema name that is not a plain lower-case identifier.
var ErrSchemaName = errors.New("invalid schema name")

// Schema names are plain identifiers, short enough that derived names (<schema>_shadow,
// <schema>_old_<n>) stay within Postgres' 63-byte limit.
var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// ValidateSchema reports whether schema can be used as a target schema.
func ValidateSchema(schema string) error {
	if !schemaRE.MatchString(schema) || schema == "public" || schema == "information_schema" ||
		len(schema) >= 3 && schema[:3] == "pg_" {
		return fmt.Errorf("%w: %q (want [a-z_][a-z0-9_]{0,39}, not public or pg_*)", ErrSchemaName, schema)
	}
	return nil
}

// Up creates schema if needed and applies every pending migration to it. Running it again is a
// no-op. Concurrent callers are serialised by a Postgres advisory lock per schema.
func Up(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	_, err := UpResults(ctx, pool, schema)
	return err
}

// Applied is one migration that Up applied.
type Applied struct {
	Version  int64
	Source   string
	Duration time.Duration
}

// UpResults is Up, returning the migrations it applied (none when the schema was current).
func UpResults(ctx context.Context, pool *pgxpool.Pool, schema string) ([]Applied, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	if err := createSchema(ctx, pool, schema); err != nil {
		return nil, err
	}
	p, db, err := provider(pool, schema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s up: %w", schema, err)
	}
	out := make([]Applied, 0, len(res))
	for _, r := range res {
		out = append(out, Applied{Version: r.Source.Version, Source: r.Source.Path, Duration: r.Duration})
	}
	return out, nil
}

// MigrationStatus is the state of one migration in one schema.
type MigrationStatus struct {
	Version   int64
	Source    string
	Applied   bool
	AppliedAt time.Time
}

// StatusOf returns the state of every known migration in schema, ascending by version. A
// schema that does not exist has every migration pending; StatusOf never creates it.
func StatusOf(ctx context.Context, pool *pgxpool.Pool, schema string) ([]MigrationStatus, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	exists, err := schemaExists(ctx, pool, schema)
	if err != nil {
		return nil, err
	}
	p, db, err := provider(pool, schema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if !exists {
		var out []MigrationStatus
		for _, s := range p.ListSources() {
			out = append(out, MigrationStatus{Version: s.Version, Source: s.Path})
		}
		return out, nil
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s status: %w", schema, err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{Version: s.Source.Version, Source: s.Source.Path,
			Applied: s.State == goose.StateApplied, AppliedAt: s.AppliedAt})
	}
	return out, nil
}

// Status writes a table of every migration and its state in schema to w.
func Status(ctx context.Context, pool *pgxpool.Pool, schema string, w io.Writer) error {
	st, err := StatusOf(ctx, pool, schema)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "schema %s\n", schema)
	fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tSOURCE")
	for _, s := range st {
		state, at := "pending", "-"
		if s.Applied {
			state, at = "applied", s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Version, state, at, s.Source)
	}
	return tw.Flush()
}

// Latest is the highest migration version embedded in the binary.
func Latest() (int64, error) {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", n, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// provider opens a database/sql handle whose connections use schema as their only search_path
// entry, and a goose provider over it. The caller closes db.
func provider(pool *pgxpool.Pool, schema string) (*goose.Provider, *sql.DB, error) {
	cfg := pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(2)
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(schema)))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("goose provider: %w", err)
	}
	return p, db, nil
}

func createSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	// CREATE SCHEMA IF NOT EXISTS can still fail on a concurrent create; the lock orders them.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockID(schema)); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}

func schemaExists(ctx context.Context, pool *pgxpool.Pool, schema string) (bool, error) {
	var ok bool
	err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up schema %s: %w", schema, err)
	}
	return ok, nil
}

// lockID is the advisory lock key of one schema's migrations.
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("tgflow/migrations/" + schema))
	return int64(h.Sum64() & 0x7fffffffffffffff)
}
