package qdrant_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

// TestCrashBetweenAliasActions: Qdrant applies Swap's "delete alias, create alias" one action
// after the other, so a crash between them leaves the alias missing while both the live
// collection and the shadow exist. The next start (New → ensureLive) must put the alias back
// on the live model, never on the shadow, which may be unfinished; the shadow is then resumed
// and swapped as usual.
func TestCrashBetweenAliasActions(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		s := projectiontest.NewScript()
		opts := qdrant.Options{Alias: freshName("t"), Space: scriptSpace}
		live := newProjection(t, client, opts)
		alias := live.Alias()
		applyAll(t, live, s.Facts, 5)
		before := mustSnapshot(t, live)
		shadow, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, shadow, s.Facts[:3], 3) // an unfinished rebuild

		// The crash: only the first of Swap's two actions reached Qdrant.
		if err := client.UpdateAliases(ctx, []*qd.AliasOperations{qd.NewAliasDelete(alias)}); err != nil {
			t.Fatal(err)
		}
		restarted, err := qdrant.New(ctx, client, opts)
		if err != nil {
			t.Fatalf("start after the crash: %v", err)
		}
		if got := targetOf(t, client, alias); got != alias+"_v1" {
			t.Fatalf("after the crash the alias points at %q, want the live %s_v1 (v2 is an unfinished shadow)", got, alias)
		}
		assertSame(t, before, mustSnapshot(t, restarted))

		// The rebuild resumes the shadow where it stopped and swaps it.
		resumed, err := restarted.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp, err := resumed.Checkpoint(ctx); err != nil || cp != s.Facts[2].Seq {
			t.Fatalf("resumed shadow checkpoint %d, %v; want %d", cp, err, s.Facts[2].Seq)
		}
		applyAll(t, resumed, s.Facts[3:], 5)
		if err := restarted.Swap(ctx, resumed); err != nil {
			t.Fatal(err)
		}
		if got := targetOf(t, client, alias); got != alias+"_v2" {
			t.Fatalf("after the swap the alias points at %q, want %s_v2", got, alias)
		}
		assertSame(t, before, mustSnapshot(t, restarted))
	})
}

// TestFailedSwapKeepsAlias: when the create half of Swap's alias update fails (here: the
// shadow's collection vanished), Qdrant keeps the delete half. Swap must report the error and
// leave the alias on the live collection, so readers and the live projector keep working.
func TestFailedSwapKeepsAlias(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		s := projectiontest.NewScript()
		live := newProjection(t, client, qdrant.Options{})
		alias := live.Alias()
		applyAll(t, live, s.Until(s.Deletion), 4)
		before := mustSnapshot(t, live)
		shadow, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, shadow, s.Facts, 5)
		if err := client.DeleteCollection(ctx, alias+"_v2"); err != nil {
			t.Fatal(err)
		}
		if err := live.Swap(ctx, shadow); err == nil {
			t.Fatal("swap to a deleted collection succeeded")
		}
		if got := targetOf(t, client, alias); got != alias+"_v1" {
			t.Fatalf("after a failed swap the alias points at %q, want %s_v1", got, alias)
		}
		assertSame(t, before, mustSnapshot(t, live))
		applyAll(t, live, s.Facts[len(s.Until(s.Deletion)):], 4) // the live projector goes on
	})
}

// TestEveryWriteWaits: Qdrant applies a write without wait=true after answering it, so a
// read that follows (the next batch's state read, a checkpoint, a snapshot, a swap) could miss
// it. Every write the projection makes, in every phase, must wait.
func TestEveryWriteWaits(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		var writes atomic.Int64
		var unwaited atomic.Value // first offending method
		client := dialWith(t, addr, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
			cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if w, ok := req.(interface{ GetWait() bool }); ok {
				writes.Add(1)
				if !w.GetWait() {
					unwaited.CompareAndSwap(nil, method)
				}
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
		ctx := context.Background()
		s := projectiontest.NewScript()
		live := newProjection(t, client, qdrant.Options{})
		applyAll(t, live, s.Facts, 4)
		shadow, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, shadow, s.Facts, 7)
		if err := live.Swap(ctx, shadow); err != nil {
			t.Fatal(err)
		}
		sh, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, sh, s.Facts[:2], 2)
		if err := live.DropShadow(ctx); err != nil {
			t.Fatal(err)
		}
		if writes.Load() < 20 {
			t.Fatalf("only %d writes seen: the interceptor does not see them", writes.Load())
		}
		if m := unwaited.Load(); m != nil {
			t.Fatalf("%s was sent without wait=true", m)
		}
	})
}

// TestLargeScroll: a Snapshot scroll page larger than gRPC's default 4 MiB receive limit
// (256 points of 4608 dimensions ≈ 4.7 MB) through a production client (qdrant.Open).
func TestLargeScroll(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		const (
			dim   = 4608
			posts = 300
		)
		ctx := context.Background()
		alias := freshName("big")
		admin := qdranttest.Dial(t, addr)
		t.Cleanup(func() { dropAlias(t, admin, alias) })
		p, err := qdrant.Open(ctx, addr, qdrant.Options{Alias: alias, Space: qdrant.Space{Name: "t", Dim: dim}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Error(err)
			}
		})
		at := projectiontest.T0
		var facts []projections.Fact
		for i := range posts {
			ref := events.PostRef{ChannelID: 9, MessageID: int64(i + 1)}
			parsed := events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: ref, Date: at,
				Text: strings.Repeat(fmt.Sprintf("post %d ", i), 20)}}, at, "0")
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32((i+j)%17) - 8
			}
			facts = append(facts, projections.Fact{Seq: uint64(len(facts) + 1), Event: parsed},
				projections.Fact{Seq: uint64(len(facts) + 2), Event: events.Derive(parsed, events.ProducerEmbedder,
					&events.PostEmbedded{PostRef: ref, Vector: v, Provider: "t"}, at)})
		}
		applyAll(t, p, facts, 200)
		start := time.Now()
		snap, err := p.Snapshot(ctx)
		if err != nil {
			t.Fatalf("snapshot with pages of 256 × %d dimensions: %v", dim, err)
		}
		t.Logf("snapshot of %d points in %v", len(snap[qdrant.SectionPoints]), time.Since(start))
		if n := len(snap[qdrant.SectionPoints]); n != posts {
			t.Fatalf("snapshot has %d points, want %d", n, posts)
		}

		// Over the limit (here gRPC's default 4 MiB) the error is not a backend outage:
		// retrying cannot make the message smaller.
		small := dialWith(t, addr, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4<<20)))
		ps, err := qdrant.New(ctx, small, qdrant.Options{Alias: alias, Space: qdrant.Space{Name: "t", Dim: dim}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ps.Snapshot(ctx)
		if err == nil || errors.Is(err, projections.ErrBackend) {
			t.Fatalf("snapshot through a 4 MiB client: %v; want an error not marked ErrBackend", err)
		}
	})
}
