package searchtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/search"
)

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Postgres applies facts to the Postgres projection (schema "tgflow") of a fresh database
// on the test server and returns the database's URL (dropped when the test ends).
func Postgres(t testing.TB, facts []projections.Fact) string {
	t.Helper()
	ctx := ctxT(t)
	url := testenv.NewPostgresDB(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	p, err := postgres.New(ctx, pool, "tgflow")
	if err != nil {
		t.Fatalf("postgres projection: %v", err)
	}
	defer func() { _ = p.Close() }()
	projectiontest.ApplyBatches(t, p, facts, 200)
	return url
}

// Qdrant applies facts to a Qdrant projection of the embedder's space under a fresh base
// alias on the real server (TGFLOW_TEST_QDRANT_ADDR: a failure under CI when it is not set,
// a skip otherwise); the collections are dropped when the test ends.
func Qdrant(t testing.TB, facts []projections.Fact, info embed.Info) *search.Qdrant {
	t.Helper()
	addr := testenv.Require(t, "Qdrant", testenv.EnvQdrantAddr)
	ctx := ctxT(t)
	client, err := qdrant.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	base := "searcht" + hex.EncodeToString(b)
	p, err := qdrant.New(ctx, client, qdrant.Options{Alias: base,
		Space: qdrant.Space{Name: info.Name, Model: info.Model, Version: info.Version, Dim: info.Dim}})
	if err != nil {
		t.Fatalf("qdrant projection: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Close()
		dropCollections(t, client, base)
	})
	projectiontest.ApplyBatches(t, p, facts, 200)
	return &search.Qdrant{Client: client, Base: base}
}

func dropCollections(t testing.TB, client *qd.Client, base string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cols, err := client.ListCollections(ctx)
	if err != nil {
		t.Logf("cleanup %s: %v", base, err)
		return
	}
	for _, c := range cols {
		if strings.HasPrefix(c, base+"_") || strings.HasPrefix(c, "tgflow_meta_"+base+"_") {
			if err := client.DeleteCollection(ctx, c); err != nil {
				t.Logf("cleanup %s: %v", c, err)
			}
		}
	}
}

// Publish puts evs on the log in order, as the stages would have.
func Publish(t testing.TB, js jetstream.JetStream, evs []events.Event) {
	t.Helper()
	ctx := ctxT(t)
	for _, e := range evs {
		subject, err := e.NATSSubject(events.Default)
		if err != nil {
			t.Fatal(err)
		}
		h, body, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: subject, Header: nats.Header(h), Data: body}
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
}
