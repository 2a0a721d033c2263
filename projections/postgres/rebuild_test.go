package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

func schemas(t *testing.T, pool *pgxpool.Pool) map[string]bool {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tgflow%'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// deletedAt is what an outside reader of the live schema sees for the deleted post.
func deletedAt(t *testing.T, pool *pgxpool.Pool) *time.Time {
	t.Helper()
	var at *time.Time
	ref := projectiontest.PostDeleted
	err := pool.QueryRow(context.Background(), `SELECT deleted_at FROM tgflow.posts WHERE channel_id = $1 AND message_id = $2`,
		int64(ref.ChannelID), ref.MessageID).Scan(&at)
	if err != nil {
		t.Fatalf("query tgflow.posts: %v", err)
	}
	return at
}

func TestShadowSwap(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	s := projectiontest.NewScript()
	last := s.Facts[len(s.Facts)-1].Seq

	// The reference: the whole script in a schema of its own.
	ref := newProjection(t, pool, "reference")
	apply(t, ref, s.Facts, 10)
	want := snapshot(t, ref)

	// The live model stopped before the deletion.
	live := newProjection(t, pool, "tgflow")
	apply(t, live, s.Until(s.Deletion), 10)
	if at := deletedAt(t, pool); at != nil {
		t.Fatalf("live post deleted before the deletion fact: %v", at)
	}

	sh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatalf("shadow: %v", err)
	}
	if cp, _ := sh.Checkpoint(ctx); cp != 0 {
		t.Fatalf("new shadow checkpoint = %d, want 0", cp)
	}
	apply(t, sh, s.Facts, 7)
	assertSame(t, want, snapshot(t, sh))
	if at := deletedAt(t, pool); at != nil {
		t.Fatal("filling the shadow changed the live schema")
	}

	if err := live.Swap(ctx, sh); err != nil {
		t.Fatalf("swap: %v", err)
	}
	if at := deletedAt(t, pool); at == nil {
		t.Fatal("after the swap tgflow.posts does not show the rebuilt data")
	}
	got := schemas(t, pool)
	if !got["tgflow"] || !got["tgflow_old_1"] || got["tgflow_shadow"] {
		t.Fatalf("schemas after swap = %v, want tgflow and tgflow_old_1", got)
	}
	if cp, err := live.Checkpoint(ctx); err != nil || cp != last {
		t.Fatalf("live checkpoint after swap = %d, %v; want the shadow's %d", cp, err, last)
	}
	assertSame(t, want, snapshot(t, live))
	if err := sh.Apply(ctx, s.Facts[:1]); !errors.Is(err, postgres.ErrSwapped) {
		t.Fatalf("apply on the swapped shadow = %v, want ErrSwapped", err)
	}
	old, err := live.OldSchemas(ctx)
	if err != nil || len(old) != 1 || old[0] != "tgflow_old_1" {
		t.Fatalf("old schemas = %v, %v", old, err)
	}

	// The live handle keeps writing, into the swapped-in tables (its pooled connections had
	// prepared statements for the old ones).
	extra := projections.Fact{Seq: last + 1, Event: events.New(events.ProducerIngest,
		&events.PostDeleted{PostRef: projectiontest.PostEdited, DeletedAt: projectiontest.T0.Add(time.Hour)}, projectiontest.T0.Add(time.Hour))}
	for range 4 { // every pooled connection
		if err := live.Apply(ctx, []projections.Fact{extra}); err != nil {
			t.Fatalf("apply after swap: %v", err)
		}
	}
	var newDel, oldDel *time.Time
	q := `SELECT deleted_at FROM %s.posts WHERE channel_id = 1001 AND message_id = 10`
	if err := pool.QueryRow(ctx, sprintf(q, "tgflow")).Scan(&newDel); err != nil || newDel == nil {
		t.Fatalf("fact applied after the swap is not in tgflow: %v %v", newDel, err)
	}
	if err := pool.QueryRow(ctx, sprintf(q, "tgflow_old_1")).Scan(&oldDel); err != nil || oldDel != nil {
		t.Fatalf("fact applied after the swap went to the old schema: %v %v", oldDel, err)
	}

	// A second rebuild starts from an empty shadow and retires the first rebuild.
	sh2, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sh2, append(append([]projections.Fact{}, s.Facts...), extra), 50)
	if err := live.Swap(ctx, sh2); err != nil {
		t.Fatalf("second swap: %v", err)
	}
	if got := schemas(t, pool); !got["tgflow_old_2"] || !got["tgflow_old_1"] {
		t.Fatalf("schemas after second swap = %v", got)
	}
}

func TestSwapRefusesABehindShadow(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	s := projectiontest.NewScript()
	live := newProjection(t, pool, "tgflow")
	apply(t, live, s.Facts, 20)
	sh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sh, s.Facts[:5], 5)
	if err := live.Swap(ctx, sh); !errors.Is(err, postgres.ErrShadowBehind) {
		t.Fatalf("swap of a behind shadow = %v, want ErrShadowBehind", err)
	}
	if got := schemas(t, pool); !got["tgflow"] || !got["tgflow_shadow"] || len(got) != 2 {
		t.Fatalf("schemas after refused swap = %v", got)
	}
	if err := live.Swap(ctx, live); !errors.Is(err, postgres.ErrNotShadow) {
		t.Fatalf("swap with itself = %v, want ErrNotShadow", err)
	}
}

func TestInterruptedShadowResumes(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	s := projectiontest.NewScript()
	ref := newProjection(t, pool, "reference")
	apply(t, ref, s.Facts, len(s.Facts))
	want := snapshot(t, ref)

	live := newProjection(t, pool, "tgflow")
	sh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	half := s.Facts[len(s.Facts)/2-1].Seq
	apply(t, sh, s.Until(half+1), 4)
	_ = sh.Close() // the rebuild process dies here

	resumed, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := resumed.Checkpoint(ctx)
	if err != nil || cp != half {
		t.Fatalf("resumed shadow checkpoint = %d, %v; want %d", cp, err, half)
	}
	// The replay restarts a little before the checkpoint; the overlap is skipped.
	apply(t, resumed, s.Facts[len(s.Facts)/2-5:], 6)
	assertSame(t, want, snapshot(t, resumed))

	if err := live.DropShadow(ctx); err != nil {
		t.Fatal(err)
	}
	if schemas(t, pool)["tgflow_shadow"] {
		t.Fatal("shadow schema still exists after DropShadow")
	}
	fresh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp, _ := fresh.Checkpoint(ctx); cp != 0 {
		t.Fatalf("shadow after DropShadow starts at %d, want 0", cp)
	}
}
