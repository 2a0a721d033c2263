package testenv_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/internal/testenv"
)

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestPostgresSelectOne(t *testing.T) {
	conn := connect(t, testenv.PostgresURL(t))
	var n int
	if err := conn.QueryRow(ctx(t), "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("SELECT 1: %v", err)
	}
	if n != 1 {
		t.Fatalf("SELECT 1 = %d", n)
	}
}

func TestNewPostgresDBCreatesAndDrops(t *testing.T) {
	admin := connect(t, testenv.PostgresURL(t))

	var name string
	t.Run("fresh database", func(t *testing.T) {
		url := testenv.NewPostgresDB(t)
		conn := connect(t, url) // closed before the drop (cleanups are LIFO)
		if err := conn.QueryRow(ctx(t), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatalf("current_database: %v", err)
		}
		if !strings.HasPrefix(name, "tgflow_t_") {
			t.Fatalf("database name %q lacks the tgflow_t_ prefix", name)
		}
		// Fresh: no user tables, and writable.
		var tables int
		if err := conn.QueryRow(ctx(t),
			"SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("new database has %d tables", tables)
		}
		if _, err := conn.Exec(ctx(t), "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
			t.Fatalf("create table: %v", err)
		}
		// A connection left open must not prevent the drop.
		leaked, err := pgx.Connect(ctx(t), url)
		if err != nil {
			t.Fatalf("second connection: %v", err)
		}
		_ = leaked // deliberately never closed
	})
	if name == "" {
		t.Fatal("subtest did not report the database name")
	}

	var exists bool
	if err := admin.QueryRow(ctx(t),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after the subtest's cleanup", name)
	}
}

func TestNewPostgresDBIsolated(t *testing.T) {
	a, b := testenv.NewPostgresDB(t), testenv.NewPostgresDB(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	if _, err := connect(t, a).Exec(ctx(t), "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, b).QueryRow(ctx(t),
		"SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("table created in one test database is visible in another")
	}
}

func TestNeo4jReturnOne(t *testing.T) {
	uri, user, password := testenv.Neo4j(t)
	auth := neo4j.NoAuth()
	if user != "" {
		auth = neo4j.BasicAuth(user, password, "")
	}
	driver, err := neo4j.NewDriverWithContext(uri, auth)
	if err != nil {
		t.Fatalf("driver: %v", err)
	}
	t.Cleanup(func() { _ = driver.Close(context.Background()) })

	if err := driver.VerifyConnectivity(ctx(t)); err != nil {
		t.Fatalf("VerifyConnectivity(%s): %v", uri, err)
	}
	res, err := neo4j.ExecuteQuery(ctx(t), driver, "RETURN 1 AS n", nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatalf("RETURN 1: %v", err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("RETURN 1 gave %d records", len(res.Records))
	}
	v, ok := res.Records[0].Get("n")
	if !ok {
		t.Fatalf("record has no n: %v", res.Records[0].Keys)
	}
	if n, isInt := v.(int64); !isInt || n != 1 {
		t.Fatalf("RETURN 1 = %#v (%T), want int64(1)", v, v)
	}
}

func TestQdrantAddrNeverFails(t *testing.T) {
	t.Setenv(testenv.EnvQdrantAddr, "")
	t.Setenv("CI", "true")
	if addr, ok := testenv.QdrantAddr(t); ok || addr != "" {
		t.Fatalf("QdrantAddr() = %q, %v with the variable empty", addr, ok)
	}
	t.Setenv(testenv.EnvQdrantAddr, "127.0.0.1:6334")
	if addr, ok := testenv.QdrantAddr(t); !ok || addr != "127.0.0.1:6334" {
		t.Fatalf("QdrantAddr() = %q, %v", addr, ok)
	}
}

// recorder is a testing.TB that records Fatalf/Skipf instead of stopping.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	const env = "TGFLOW_TEST_TESTENV_DUMMY"
	for _, tc := range []struct {
		ci, value      string
		wantFatal      bool
		wantSkip       bool
		wantReturnsVal bool
	}{
		{ci: "", value: "", wantSkip: true},
		{ci: "false", value: "", wantSkip: true},
		{ci: "FALSE", value: "", wantSkip: true},
		{ci: "0", value: "", wantSkip: true},
		{ci: "true", value: "", wantFatal: true},
		{ci: "1", value: "", wantFatal: true},
		{ci: "woodpecker", value: "", wantFatal: true},
		{ci: "true", value: "x://y", wantReturnsVal: true},
		{ci: "", value: "x://y", wantReturnsVal: true},
	} {
		t.Run(fmt.Sprintf("CI=%q,value=%q", tc.ci, tc.value), func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(env, tc.value)
			r := &recorder{TB: t}
			got := testenv.Require(r, "Dummy", env)
			if (r.fatal != "") != tc.wantFatal {
				t.Errorf("fatal = %q, want fatal %v", r.fatal, tc.wantFatal)
			}
			if (r.skip != "") != tc.wantSkip {
				t.Errorf("skip = %q, want skip %v", r.skip, tc.wantSkip)
			}
			for _, msg := range []string{r.fatal, r.skip} {
				if msg != "" && (!strings.Contains(msg, env) || !strings.Contains(msg, "./scripts/test.sh")) {
					t.Errorf("message %q should name %s and ./scripts/test.sh", msg, env)
				}
			}
			if tc.wantReturnsVal && got != tc.value {
				t.Errorf("Require = %q, want %q", got, tc.value)
			}
		})
	}
}

func TestNewPostgresDBNameShape(t *testing.T) {
	// The name is derived from t.Name(); check via a long, odd subtest name.
	t.Run("Ünïcode / spaces & a very long name that goes on and on and on", func(t *testing.T) {
		url := testenv.NewPostgresDB(t)
		var name string
		if err := connect(t, url).QueryRow(ctx(t), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if len(name) > 63 || !regexp.MustCompile(`^tgflow_t_[a-z0-9_]+_[0-9a-f]{16}$`).MatchString(name) {
			t.Fatalf("bad database name %q", name)
		}
	})
}
