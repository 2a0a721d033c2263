// Package qdranttest is an in-process Qdrant for tests and benchmarks: a gRPC server on
// 127.0.0.1 that implements Qdrant's own generated service interfaces (Qdrant, Collections,
// Points) with real semantics for what tgflow uses, and answers codes.Unimplemented for the
// rest. It keeps everything in memory and searches exactly (brute force).
//
// What it implements:
//   - HealthCheck (the client calls it when it connects).
//   - Collections with one unnamed dense vector (size + Cosine/Dot/Euclid/Manhattan):
//     create, get info (points count, payload schema), list, exists, delete.
//   - Aliases: UpdateAliases (create/delete/rename, all actions of a request applied
//     atomically), list all, list per collection; every collection operation accepts an
//     alias name.
//   - Points: upsert (UUID or numeric id; wrong dimension → InvalidArgument), delete by ids
//     or filter, get, scroll (id order, pagination), count, set/overwrite/delete/clear
//     payload, update batch of those, create/delete field index (recorded in the schema).
//   - Search and Query (nearest to a dense vector, or no query = id order) with filter,
//     limit, offset, score threshold; Cosine vectors are normalized on upsert, as in Qdrant.
//   - Filters: must / should / must_not / min_should, nested filters, match keyword /
//     integer / bool / any-of keywords / any-of integers, numeric range, datetime range
//     (RFC 3339 strings), values count, is_empty, is_null, has_id.
//
// Tests choose the server with Addr: a real Qdrant when TGFLOW_TEST_QDRANT_ADDR is set,
// otherwise this one.
package qdranttest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"

	"github.com/tgflow/tgflow/internal/testenv"
)

// EnvAddr names the variable that points tests at a real Qdrant: host:port of its gRPC port.
const EnvAddr = testenv.EnvQdrantAddr

// maxMsgSize matches the order of Qdrant's own gRPC limit, well above gRPC's 4 MiB default,
// so large upsert batches and scroll pages fit.
const maxMsgSize = 64 << 20

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
// TGFLOW_TEST_QDRANT_ADDR (real is true), or a fresh in-process server.
func Addr(t testing.TB) (addr string, real bool) {
	t.Helper()
	if a, ok := testenv.QdrantAddr(t); ok {
		return a, true
	}
	return Start(t), false
}

// Connect opens a client to addr (host:port of a gRPC port).
func Connect(addr string) (*qd.Client, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("qdranttest: address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("qdranttest: address %q: bad port", addr)
	}
	return qd.NewClient(&qd.Config{
		Host:     host,
		Port:     port,
		PoolSize: 1,
		// The client's version check cannot read the client's own version in test binaries
		// and only logs a warning per connection; Dial checks health instead.
		SkipCompatibilityCheck: true,
		GrpcOptions:            []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize))},
	})
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
