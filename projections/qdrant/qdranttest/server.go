// Package qdranttest is an in-process Qdrant for tests and benchmarks: a gRPC server on
// 127.0.0.1 that implements Qdrant's own generated service interfaces (Qdrant, Collections,
// Points) with real semantics for what tgflow uses, and answers codes.Unimplemented for the
// rest. It keeps everything in memory and searches exactly (brute force).
//
// What it implements:
//   - HealthCheck (the client calls it when it connects).
//   - Collections with one unnamed dense vector (size + Cosine/Dot/Euclid/Manhattan):
//     create, get info (points count, payload schema), list, exists, delete.
//   - Aliases: UpdateAliases (create/delete/rename, applied in order; readers never see a
//     request half done, but a failing action keeps the ones before it, as in Qdrant), list
//     all, list per collection; every collection operation accepts an alias name.
//   - Points: upsert (UUID or numeric id; wrong dimension → InvalidArgument), delete by ids
//     or filter, get, scroll (id order, pagination), count, set/overwrite/delete/clear
//     payload, update batch of those, create/delete field index (recorded in the schema).
//   - Search and Query (nearest to a dense vector, or no query = id order) with filter,
//     limit, offset, score threshold; Cosine vectors are normalized on upsert, as in Qdrant.
//   - Filters: must / should / must_not / min_should, nested filters, match keyword /
//     integer / bool / any-of keywords / any-of integers, numeric range, datetime range
//     (RFC 3339 strings), values count, is_empty, is_null, has_id.
//
// Tests run against both this server and a real Qdrant with Each (the real one named by
// TGFLOW_TEST_QDRANT_ADDR, which ./scripts/test.sh sets when it finds the Qdrant binary).
package qdranttest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/projections/qdrant"
)

// EnvAddr names the variable that points tests at a real Qdrant: host:port of its gRPC port.
const EnvAddr = testenv.EnvQdrantAddr

// maxMsgSize is the server's message limit, the clients' (qdrant.MaxMessageSize): well above
// gRPC's 4 MiB default, so large upsert batches and scroll pages fit, as with Qdrant.
const maxMsgSize = qdrant.MaxMessageSize

// Server is a running in-process Qdrant.
type Server struct {
	grpc *grpc.Server
	lis  net.Listener
	done chan struct{}
}

// NewServer starts a server on 127.0.0.1 with a free port. Close stops it.
func NewServer() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("qdranttest: listen: %w", err)
	}
	st := newStore()
	g := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsgSize), grpc.MaxSendMsgSize(maxMsgSize))
	qd.RegisterQdrantServer(g, qdrantService{})
	qd.RegisterCollectionsServer(g, &collectionsService{s: st})
	qd.RegisterPointsServer(g, &pointsService{s: st})
	s := &Server{grpc: g, lis: lis, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = g.Serve(lis) // returns when stopped
	}()
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops the server, giving in-flight calls a moment to finish.
func (s *Server) Close() error {
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		s.grpc.Stop()
	}
	<-s.done
	return nil
}

// Start starts a server for the test and stops it in cleanup. It returns the address.
func Start(t testing.TB) string {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr()
}

// Addr returns the Qdrant the test runs against: the real one named by
// TGFLOW_TEST_QDRANT_ADDR (real is true), or a fresh in-process server. Prefer Each, which
// runs a test against both.
func Addr(t testing.TB) (addr string, real bool) {
	t.Helper()
	if a, ok := testenv.QdrantAddr(t); ok {
		return a, true
	}
	return Start(t), false
}

// Real returns the address of the real Qdrant (TGFLOW_TEST_QDRANT_ADDR) for a test that
// needs one. Without it the test is skipped, or fails under CI (testenv.Require):
// ./scripts/test.sh starts the Qdrant binary when it finds one.
func Real(t testing.TB) string {
	t.Helper()
	return testenv.Require(t, "Qdrant", EnvAddr)
}

// Target is one Qdrant a test runs against.
type Target struct {
	// Name is the subtest name: "inprocess" or "real".
	Name string
	// Real is true for the real server.
	Real bool
	// addr returns the gRPC address, starting the in-process server for the test (or
	// skipping / failing the test when the real one is absent, see Real).
	addr func(testing.TB) string
}

// Addr returns the target's gRPC address (host:port) for the test.
func (tg Target) Addr(t testing.TB) string {
	t.Helper()
	return tg.addr(t)
}

// Targets are the servers Each runs a test against: the in-process server, always, and the
// real Qdrant of TGFLOW_TEST_QDRANT_ADDR. Its subtest skips when the variable is empty, and
// fails under CI, so a CI run never passes without having met the real server.
func Targets() []Target {
	return []Target{
		{Name: "inprocess", addr: Start},
		{Name: "real", Real: true, addr: Real},
	}
}

// runner is *testing.T or *testing.B.
type runner[T any] interface {
	testing.TB
	Run(name string, f func(T)) bool
}

// Each runs fn as one subtest (or sub-benchmark) per target: against the in-process server
// and against the real Qdrant, so the same assertions keep the in-process server honest.
func Each[T runner[T]](t T, fn func(t T, addr string, real bool)) {
	t.Helper()
	for _, tg := range Targets() {
		t.Run(tg.Name, func(t T) {
			fn(t, tg.Addr(t), tg.Real)
		})
	}
}

// Connect opens a client to addr (host:port of a gRPC port) with the production client
// configuration (qdrant.ClientConfig).
func Connect(addr string) (*qd.Client, error) {
	cfg, err := qdrant.ClientConfig(addr)
	if err != nil {
		return nil, fmt.Errorf("qdranttest: %w", err)
	}
	cfg.PoolSize = 1
	// The client's version check cannot read the client's own version in test binaries and
	// only logs a warning per connection; Dial checks health instead.
	cfg.SkipCompatibilityCheck = true
	return qd.NewClient(cfg)
}

// Dial connects a client for the test and closes it in cleanup.
func Dial(t testing.TB, addr string) *qd.Client {
	t.Helper()
	c, err := Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.HealthCheck(ctx); err != nil {
		t.Fatalf("qdrant at %s: %v", addr, err)
	}
	return c
}
