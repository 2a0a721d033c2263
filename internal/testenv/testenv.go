// Package testenv gives tests access to the real services that
// ./scripts/test.sh starts (Postgres, Neo4j) or that the caller provides
// (Qdrant), through environment variables:
//
//	TGFLOW_TEST_POSTGRES_URL    postgres://user@127.0.0.1:PORT/db?sslmode=disable
//	TGFLOW_TEST_NEO4J_URI       bolt://127.0.0.1:PORT
//	TGFLOW_TEST_NEO4J_USER      empty when auth is disabled (the harness default)
//	TGFLOW_TEST_NEO4J_PASSWORD  empty when auth is disabled
//	TGFLOW_TEST_QDRANT_ADDR     host:port of a real Qdrant (optional, never started)
//
// A test that needs a service whose variable is empty is skipped with a
// message naming the variable, except under CI (CI set to anything but
// "", "false" or "0"), where it fails: a green CI run must never hide a
// service that was not started.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// Environment variable names.
const (
	EnvPostgresURL   = "TGFLOW_TEST_POSTGRES_URL"
	EnvNeo4jURI      = "TGFLOW_TEST_NEO4J_URI"
	EnvNeo4jUser     = "TGFLOW_TEST_NEO4J_USER"
	EnvNeo4jPassword = "TGFLOW_TEST_NEO4J_PASSWORD"
	EnvQdrantAddr    = "TGFLOW_TEST_QDRANT_ADDR"
)

// adminTimeout bounds each CREATE/DROP DATABASE round trip.
const adminTimeout = 30 * time.Second

// InCI reports whether the tests run under CI: the CI variable is set to
// anything other than "", "false" or "0" (case-insensitive).
func InCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return v != "" && !strings.EqualFold(v, "false") && v != "0"
}

// Require returns the value of envVar. When it is empty the test is
// stopped: t.Fatalf under CI, t.Skipf otherwise. name is the human name of
// the service ("Postgres", "Neo4j").
func Require(t testing.TB, name, envVar string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(envVar))
	if v != "" {
		return v
	}
	if InCI() {
		t.Fatalf("%s is required but %s is not set (CI=%q, so this is a failure, not a skip); "+
			"run the tests with ./scripts/test.sh, which starts %s and sets %s",
			name, envVar, os.Getenv("CI"), name, envVar)
		return ""
	}
	t.Skipf("skipping: %s not available: %s is not set; run ./scripts/test.sh "+
		"(it starts %s and sets %s) or set %s yourself", name, envVar, name, envVar, envVar)
	return ""
}

// PostgresURL returns the URL of the test Postgres server
// (TGFLOW_TEST_POSTGRES_URL). Tests that write data should prefer
// NewPostgresDB, which gives them a database of their own.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return Require(t, "Postgres", EnvPostgresURL)
}

// NewPostgresDB creates a fresh, empty database with a random name on the
// test Postgres server and returns a connection URL for it. The database is
// dropped (WITH (FORCE), so connections left open do not block it) in
// t.Cleanup; close your own pools in a cleanup registered after this call
// (cleanups run last-in first-out) or simply let the drop end them.
func NewPostgresDB(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	name := newDBName(t.Name())

	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", redact(base), err)
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testenv: drop database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	u, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return u
}

// Neo4j returns the Bolt URI and credentials of the test Neo4j server. The
// harness started by ./scripts/test.sh runs with auth disabled, so user and
// password are empty: use neo4j.NoAuth() when user == "", else
// neo4j.BasicAuth(user, password, "").
//
// Neo4j Community has a single user database, so test binaries that use it are
// serialised by a file lock (see lockNeo4j); tests within one package must not run
// in parallel against it.
func Neo4j(t testing.TB) (uri, user, password string) {
	t.Helper()
	uri = Require(t, "Neo4j", EnvNeo4jURI)
	lockNeo4j(t)
	return uri, os.Getenv(EnvNeo4jUser), os.Getenv(EnvNeo4jPassword)
}

// QdrantAddr returns TGFLOW_TEST_QDRANT_ADDR and whether it is set. It
// never fails or skips the test: Qdrant is optional, and callers decide
// what to use instead (an in-memory fake, say) when ok is false.
func QdrantAddr(t testing.TB) (addr string, ok bool) {
	t.Helper()
	addr = strings.TrimSpace(os.Getenv(EnvQdrantAddr))
	return addr, addr != ""
}

// newDBName returns "tgflow_t_<test-name-fragment>_<16 hex>", at most 63
// bytes (Postgres' identifier limit), lower-case ASCII only.
func newDBName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 24 {
			break
		}
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	frag := strings.Trim(b.String(), "_")
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	if frag == "" {
		return "tgflow_t_" + hex.EncodeToString(rnd[:])
	}
	return "tgflow_t_" + frag + "_" + hex.EncodeToString(rnd[:])
}

// withDatabase returns connString pointing at database name. It accepts
// both URL (postgres://...) and keyword/value (host=... dbname=...) forms.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvPostgresURL, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value form: a later dbname overrides an earlier one.
	return strings.TrimSpace(connString) + " dbname=" + name, nil
}

// redact hides a password in a connection URL for error messages.
func redact(connString string) string {
	u, err := url.Parse(connString)
	if err != nil || u.User == nil {
		return connString
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

var (
	neo4jLockOnce sync.Once
	neo4jLockErr  error
	// neo4jLockFile stays referenced for the life of the binary: if it were collected, its
	// finalizer would close the descriptor and release the lock.
	//lint:ignore U1000 written only on purpose: the reference is what keeps the lock held
	neo4jLockFile *os.File
)

// lockNeo4j serialises the test binaries that use Neo4j: Community has a single database
// and the tests clear it, while `go test ./...` runs packages in parallel. The first test
// of a binary that asks for Neo4j takes an exclusive file lock, held until the binary
// exits (the kernel releases it).
func lockNeo4j(t testing.TB) {
	t.Helper()
	neo4jLockOnce.Do(func() {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "tgflow-neo4j-tests.lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			neo4jLockErr = err
			return
		}
		neo4jLockFile = f
		neo4jLockErr = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	})
	if neo4jLockErr != nil {
		t.Fatalf("lock the shared Neo4j database: %v", neo4jLockErr)
	}
}
