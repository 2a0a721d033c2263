package qdranttest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

// These tests pin the behaviour tgflow relies on. Each runs against the in-process server
// and against the real Qdrant of TGFLOW_TEST_QDRANT_ADDR (skipped without it, failing under
// CI): the same assertions on both are what keep the in-process server honest. Assertions
// about the test server's own limits run only against it. Every test works in collections
// of its own, so they run in parallel.

func TestHealthCheck(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		reply, err := c.HealthCheck(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if reply.GetVersion() == "" {
			t.Error("no version")
		}
		if !real && reply.GetVersion() != qdranttest.Version {
			t.Errorf("version %q, want %q", reply.GetVersion(), qdranttest.Version)
		}
	})
}

func TestCollections(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		name := newCollection(t, c, 4, qd.Distance_Cosine)

		if ok, err := c.CollectionExists(ctx, name); err != nil || !ok {
			t.Fatalf("exists = %v, %v", ok, err)
		}
		names, err := c.ListCollections(ctx)
		if err != nil || !slices.Contains(names, name) {
			t.Fatalf("list = %v, %v", names, err)
		}
		err = c.CreateCollection(ctx, &qd.CreateCollection{CollectionName: name,
			VectorsConfig: qd.NewVectorsConfig(&qd.VectorParams{Size: 4, Distance: qd.Distance_Cosine})})
		wantCode(t, "create twice", err, codes.AlreadyExists)
		_, err = c.GetCollectionInfo(ctx, name+"_missing")
		wantCode(t, "get a missing collection", err, codes.NotFound)

		upsert(t, c, name, pt(1, []float32{1, 0, 0, 0}, map[string]any{"tag": "a"}), pt(2, []float32{0, 1, 0, 0}, nil))
		if _, err := c.CreateFieldIndex(ctx, &qd.CreateFieldIndexCollection{CollectionName: name, FieldName: "tag",
			FieldType: qd.FieldType_FieldTypeKeyword.Enum(), Wait: qd.PtrOf(true)}); err != nil {
			t.Fatal(err)
		}
		info, err := c.GetCollectionInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.GetPointsCount() != 2 {
			t.Errorf("points count %d, want 2", info.GetPointsCount())
		}
		params := info.GetConfig().GetParams().GetVectorsConfig().GetParams()
		if params.GetSize() != 4 || params.GetDistance() != qd.Distance_Cosine {
			t.Errorf("vector params %v", params)
		}
		if s := info.GetPayloadSchema()["tag"]; s.GetDataType() != qd.PayloadSchemaType_Keyword {
			t.Errorf("payload schema %v, want tag as keyword", info.GetPayloadSchema())
		}

		if err := c.DeleteCollection(ctx, name); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.CollectionExists(ctx, name); ok {
			t.Error("deleted collection exists")
		}
	})
}

func TestPointsUpsertGetDelete(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		name := newCollection(t, c, 4, qd.Distance_Cosine)
		const id = "5C56C793-69F3-4FBF-87E6-C4BF54C28C26"
		upsert(t, c, name,
			&qd.PointStruct{Id: qd.NewID(id), Vectors: qd.NewVectors(3, 4, 0, 0), Payload: qd.NewValueMap(map[string]any{"n": 1, "s": "x", "l": []any{"a", "b"}})},
			pt(7, []float32{0, 0, 2, 0}, nil))

		got, err := c.Get(ctx, &qd.GetPoints{CollectionName: name, Ids: []*qd.PointId{qd.NewID(id), qd.NewIDNum(7), qd.NewIDNum(8)},
			WithPayload: qd.NewWithPayload(true), WithVectors: qd.NewWithVectors(true)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d points, want 2 (8 does not exist)", len(got))
		}
		byID := map[string]*qd.RetrievedPoint{}
		for _, p := range got {
			byID[idString(p.GetId())] = p
		}
		u := byID["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"] // UUIDs come back canonical
		if u == nil {
			t.Fatalf("uuid point missing from %v", byID)
		}
		// Cosine collections store the vector normalized: (3,4) → (0.6,0.8).
		if v := vectorOf(u); !approx(v, []float32{0.6, 0.8, 0, 0}) {
			t.Errorf("stored vector %v, want normalized (0.6,0.8,0,0)", v)
		}
		if u.GetPayload()["n"].GetIntegerValue() != 1 || u.GetPayload()["s"].GetStringValue() != "x" ||
			len(u.GetPayload()["l"].GetListValue().GetValues()) != 2 {
			t.Errorf("payload %v", u.GetPayload())
		}

		// Wrong dimension is rejected as Qdrant does. (Qdrant may still have stored the valid
		// points of a rejected request, so tgflow never relies on a failed write being all
		// or nothing: its writes are idempotent and redone. The in-process server stores none.)
		_, err = c.Upsert(ctx, &qd.UpsertPoints{CollectionName: name, Wait: qd.PtrOf(true),
			Points: []*qd.PointStruct{pt(9, []float32{1, 2, 3, 4}, nil), pt(10, []float32{1, 2}, nil)}})
		wantCode(t, "upsert a 2-dimensional vector", err, codes.InvalidArgument)
		if !real {
			if n := count(t, c, name, nil); n != 2 {
				t.Errorf("a rejected upsert stored points: count %d", n)
			}
		}
		if _, err := c.Delete(ctx, &qd.DeletePoints{CollectionName: name, Wait: qd.PtrOf(true), Points: qd.NewPointsSelector(qd.NewIDNum(9))}); err != nil {
			t.Fatal(err)
		}
		_, err = c.Query(ctx, &qd.QueryPoints{CollectionName: name, Query: qd.NewQuery(1, 2)})
		wantCode(t, "query with a 2-dimensional vector", err, codes.InvalidArgument)

		// Delete by id and by filter.
		upsert(t, c, name, pt(20, []float32{1, 1, 1, 1}, map[string]any{"group": "g"}), pt(21, []float32{1, 1, 1, 0}, map[string]any{"group": "g"}))
		if _, err := c.Delete(ctx, &qd.DeletePoints{CollectionName: name, Wait: qd.PtrOf(true), Points: qd.NewPointsSelector(qd.NewIDNum(7))}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Delete(ctx, &qd.DeletePoints{CollectionName: name, Wait: qd.PtrOf(true),
			Points: qd.NewPointsSelectorFilter(&qd.Filter{Must: []*qd.Condition{qd.NewMatchKeyword("group", "g")}})}); err != nil {
			t.Fatal(err)
		}
		if ids := scrollIDs(t, c, name, nil, 10); !slices.Equal(ids, []string{"5c56c793-69f3-4fbf-87e6-c4bf54c28c26"}) {
			t.Errorf("after deletes: %v", ids)
		}
	})
}

func TestPayloadUpdates(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		name := newCollection(t, c, 2, qd.Distance_Dot)
		upsert(t, c, name, pt(1, []float32{1, 0}, map[string]any{"a": 1, "b": 2}))
		if _, err := c.SetPayload(ctx, &qd.SetPayloadPoints{CollectionName: name, Wait: qd.PtrOf(true),
			Payload: qd.NewValueMap(map[string]any{"b": 3, "c": 4}), PointsSelector: qd.NewPointsSelector(qd.NewIDNum(1))}); err != nil {
			t.Fatal(err)
		}
		if got := payloadOf(t, c, name, 1); fmt.Sprint(got) != "map[a:1 b:3 c:4]" {
			t.Errorf("after set payload: %v", got)
		}
		if _, err := c.OverwritePayload(ctx, &qd.SetPayloadPoints{CollectionName: name, Wait: qd.PtrOf(true),
			Payload: qd.NewValueMap(map[string]any{"z": 0}), PointsSelector: qd.NewPointsSelector(qd.NewIDNum(1))}); err != nil {
			t.Fatal(err)
		}
		if got := payloadOf(t, c, name, 1); fmt.Sprint(got) != "map[z:0]" {
			t.Errorf("after overwrite payload: %v", got)
		}
		_, err := c.SetPayload(ctx, &qd.SetPayloadPoints{CollectionName: name, Wait: qd.PtrOf(true),
			Payload: qd.NewValueMap(map[string]any{"b": 3}), PointsSelector: qd.NewPointsSelector(qd.NewIDNum(404))})
		wantCode(t, "set payload of a missing point", err, codes.NotFound)

		// A batch: upsert and delete in one call, applied in order.
		res, err := c.UpdateBatch(ctx, &qd.UpdateBatchPoints{CollectionName: name, Wait: qd.PtrOf(true), Operations: []*qd.PointsUpdateOperation{
			qd.NewPointsUpdateUpsert(&qd.PointsUpdateOperation_PointStructList{Points: []*qd.PointStruct{pt(2, []float32{0, 1}, map[string]any{"k": "v"})}}),
			qd.NewPointsUpdateDeletePoints(&qd.PointsUpdateOperation_DeletePoints{Points: qd.NewPointsSelector(qd.NewIDNum(1))}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 {
			t.Errorf("%d results for 2 operations", len(res))
		}
		if ids := scrollIDs(t, c, name, nil, 10); !slices.Equal(ids, []string{"2"}) {
			t.Errorf("after batch: %v", ids)
		}
	})
}

// TestFilteredCosineSearch checks ranking by cosine similarity under must / should /
// must_not with keyword, integer, bool and range conditions, through Query and Search.
func TestFilteredCosineSearch(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		name := newCollection(t, c, 3, qd.Distance_Cosine)
		vecs := map[uint64][]float32{
			1: {1, 0, 0}, 2: {0.9, 0.1, 0}, 3: {0.5, 0.5, 0}, 4: {0, 1, 0}, 5: {0, 0, 1}, 6: {-1, 0, 0},
		}
		payloads := map[uint64]map[string]any{
			1: {"channel_id": 1, "tags": []any{"ai", "chips"}, "has_media": true, "posted_at": 100},
			2: {"channel_id": 2, "tags": []any{"ai"}, "has_media": false, "posted_at": 200},
			3: {"channel_id": 1, "tags": []any{"economy"}, "has_media": false, "posted_at": 300},
			4: {"channel_id": 3, "tags": []any{"ai", "economy"}, "has_media": true, "posted_at": 400},
			5: {"channel_id": 2, "has_media": false, "posted_at": 500},
			6: {"channel_id": 1, "tags": []any{"ai"}, "has_media": false, "posted_at": 600},
		}
		var pts []*qd.PointStruct
		for id, v := range vecs {
			pts = append(pts, pt(id, v, payloads[id]))
		}
		upsert(t, c, name, pts...)
		query := []float32{2, 0.2, 0}
		tests := []struct {
			name   string
			filter *qd.Filter
			want   []string
		}{
			{"all by similarity", nil, []string{"2", "1", "3", "4", "5", "6"}},
			{"must keyword in array", &qd.Filter{Must: []*qd.Condition{qd.NewMatchKeyword("tags", "ai")}}, []string{"2", "1", "4", "6"}},
			{"must integer", &qd.Filter{Must: []*qd.Condition{qd.NewMatchInt("channel_id", 1)}}, []string{"1", "3", "6"}},
			{"must_not bool", &qd.Filter{MustNot: []*qd.Condition{qd.NewMatchBool("has_media", true)}}, []string{"2", "3", "5", "6"}},
			{"should any of", &qd.Filter{Should: []*qd.Condition{qd.NewMatchInt("channel_id", 3), qd.NewMatchKeyword("tags", "chips")}}, []string{"1", "4"}},
			{"range gte/lt", &qd.Filter{Must: []*qd.Condition{qd.NewRange("posted_at", &qd.Range{Gte: qd.PtrOf(200.0), Lt: qd.PtrOf(500.0)})}}, []string{"2", "3", "4"}},
			{"combined", &qd.Filter{
				Must:    []*qd.Condition{qd.NewMatchKeyword("tags", "ai")},
				MustNot: []*qd.Condition{qd.NewMatchInt("channel_id", 2)},
				Should:  []*qd.Condition{qd.NewMatchBool("has_media", true), qd.NewRange("posted_at", &qd.Range{Gt: qd.PtrOf(550.0)})},
			}, []string{"1", "4", "6"}},
			{"any of keywords", &qd.Filter{Must: []*qd.Condition{qd.NewMatchKeywords("tags", "chips", "economy")}}, []string{"1", "3", "4"}},
			{"missing field is empty", &qd.Filter{Must: []*qd.Condition{qd.NewIsEmpty("tags")}}, []string{"5"}},
			{"nothing", &qd.Filter{Must: []*qd.Condition{qd.NewMatchKeyword("tags", "none")}}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				hits, err := c.Query(ctx, &qd.QueryPoints{CollectionName: name, Query: qd.NewQuery(query...), Filter: tc.filter, Limit: qd.PtrOf(uint64(10))})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, h := range hits {
					got = append(got, idString(h.GetId()))
					id := h.GetId().GetNum()
					if want := cosine(query, vecs[id]); math.Abs(float64(h.GetScore()-want)) > 1e-4 {
						t.Errorf("point %d score %v, want cosine %v", id, h.GetScore(), want)
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("query: got %v, want %v", got, tc.want)
				}
				res, err := c.GetPointsClient().Search(ctx, &qd.SearchPoints{CollectionName: name, Vector: query, Filter: tc.filter, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				got = nil
				for _, h := range res.GetResult() {
					got = append(got, idString(h.GetId()))
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("search: got %v, want %v", got, tc.want)
				}
				if n := count(t, c, name, tc.filter); n != uint64(len(tc.want)) {
					t.Errorf("count %d, want %d", n, len(tc.want))
				}
			})
		}
		// Limit, offset and score threshold.
		hits, err := c.Query(ctx, &qd.QueryPoints{CollectionName: name, Query: qd.NewQuery(query...), Limit: qd.PtrOf(uint64(2)), Offset: qd.PtrOf(uint64(1))})
		if err != nil || len(hits) != 2 || idString(hits[0].GetId()) != "1" || idString(hits[1].GetId()) != "3" {
			t.Errorf("limit 2 offset 1: %v, %v", hits, err)
		}
		hits, err = c.Query(ctx, &qd.QueryPoints{CollectionName: name, Query: qd.NewQuery(query...), ScoreThreshold: qd.PtrOf(float32(0.9))})
		if err != nil || len(hits) != 2 {
			t.Errorf("threshold 0.9: %v, %v", hits, err)
		}
		// Scroll pages through id order with a filter.
		if ids := scrollIDs(t, c, name, &qd.Filter{MustNot: []*qd.Condition{qd.NewMatchInt("channel_id", 2)}}, 2); !slices.Equal(ids, []string{"1", "3", "4", "6"}) {
			t.Errorf("scroll: %v", ids)
		}
	})
}

// TestAliasesSwitchAtomically: readers querying through an alias while it is moved back and
// forth (delete + create in one UpdateAliases call) always find one whole collection.
func TestAliasesSwitchAtomically(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		a := newCollection(t, c, 2, qd.Distance_Cosine)
		b := newCollection(t, c, 2, qd.Distance_Cosine)
		upsert(t, c, a, pt(1, []float32{1, 0}, nil), pt(2, []float32{0, 1}, nil))
		upsert(t, c, b, pt(1, []float32{1, 0}, nil), pt(2, []float32{0, 1}, nil), pt(3, []float32{1, 1}, nil))
		alias := uniqueName("alias")
		if err := c.CreateAlias(ctx, alias, a); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.DeleteAlias(context.Background(), alias) })

		ctx2, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				for ctx2.Err() == nil {
					n, err := c.Count(ctx2, &qd.CountPoints{CollectionName: alias, Exact: qd.PtrOf(true)})
					if ctx2.Err() != nil {
						return
					}
					if err != nil || (n != 2 && n != 3) {
						errs <- fmt.Errorf("read through the alias during a swap: count %d, %v", n, err)
						return
					}
				}
			})
		}
		for i := range 40 {
			to := b
			if i%2 == 1 {
				to = a
			}
			if err := c.UpdateAliases(ctx, []*qd.AliasOperations{qd.NewAliasDelete(alias), qd.NewAliasCreate(alias, to)}); err != nil {
				t.Fatal(err)
			}
		}
		stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		// Writes through the alias reach the collection it points to (a, after an even number of swaps).
		upsert(t, c, alias, pt(9, []float32{1, 0}, nil))
		if n := count(t, c, a, nil); n != 3 {
			t.Errorf("upsert through the alias: %s has %d points, want 3", a, n)
		}
		aliases, err := c.ListCollectionAliases(ctx, a)
		if err != nil || !slices.Equal(aliases, []string{alias}) {
			t.Errorf("aliases of %s: %v, %v", a, aliases, err)
		}
		renamed := uniqueName("renamed")
		if err := c.RenameAlias(ctx, alias, renamed); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.DeleteAlias(context.Background(), renamed) })
		all, err := c.ListAliases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range all {
			if d.GetAliasName() == alias {
				t.Errorf("old alias name %s still listed", alias)
			}
			if d.GetAliasName() == renamed && d.GetCollectionName() != a {
				t.Errorf("renamed alias points at %s, want %s", d.GetCollectionName(), a)
			}
		}
		err = c.CreateAlias(ctx, uniqueName("alias"), a+"_missing")
		wantCode(t, "alias to a missing collection", err, codes.NotFound)
		// Deleting the collection removes its aliases.
		if err := c.DeleteCollection(ctx, a); err != nil {
			t.Fatal(err)
		}
		_, err = c.Count(ctx, &qd.CountPoints{CollectionName: renamed})
		wantCode(t, "count through an alias of a deleted collection", err, codes.NotFound)
	})
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		name := newCollection(t, c, 4, qd.Distance_Dot)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 50 {
					id := uint64(w*1000 + i)
					if _, err := c.Upsert(context.Background(), &qd.UpsertPoints{CollectionName: name, Wait: qd.PtrOf(true),
						Points: []*qd.PointStruct{pt(id, []float32{1, 2, 3, 4}, map[string]any{"w": w})}}); err != nil {
						t.Error(err)
						return
					}
					_, _ = c.Query(context.Background(), &qd.QueryPoints{CollectionName: name, Query: qd.NewQuery(1, 0, 0, 0)})
				}
			})
		}
		wg.Wait()
		if n := count(t, c, name, nil); n != 400 {
			t.Errorf("count %d, want 400", n)
		}
	})
}

// TestUnimplemented: what tgflow does not use answers Unimplemented rather than a guess.
// It is a limit of the in-process server only.
func TestUnimplemented(t *testing.T) {
	t.Parallel()
	c := qdranttest.Dial(t, qdranttest.Start(t))
	ctx := context.Background()
	name := newCollection(t, c, 2, qd.Distance_Cosine)
	_, err := c.Query(ctx, &qd.QueryPoints{CollectionName: name, Query: qd.NewQuery(1, 0),
		Filter: &qd.Filter{Must: []*qd.Condition{qd.NewMatchText("text", "word")}}})
	wantCode(t, "full-text match", err, codes.Unimplemented)
	_, err = c.Facet(ctx, &qd.FacetCounts{CollectionName: name, Key: "tags"})
	wantCode(t, "facet", err, codes.Unimplemented)
	_, err = c.CreateSnapshot(ctx, name)
	wantCode(t, "snapshot", err, codes.Unimplemented)
}

// TestUpdateAliasesIsNotATransaction: when an action of an UpdateAliases request fails, the
// actions before it stay applied. A "delete + create" whose create fails leaves the alias
// deleted; Qdrant does not roll the delete back. Creating an alias that exists moves it, and
// deleting a missing alias succeeds.
func TestUpdateAliasesIsNotATransaction(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		a := newCollection(t, c, 2, qd.Distance_Cosine)
		b := newCollection(t, c, 2, qd.Distance_Cosine)
		alias := uniqueName("alias")
		if err := c.CreateAlias(ctx, alias, a); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.DeleteAlias(context.Background(), alias) })

		err := c.UpdateAliases(ctx, []*qd.AliasOperations{qd.NewAliasDelete(alias), qd.NewAliasCreate(alias, a+"_missing")})
		wantCode(t, "delete + create to a missing collection", err, codes.NotFound)
		if got, ok := aliasTarget(t, c, alias); ok {
			t.Errorf("after the failed request the alias points at %s; Qdrant keeps the delete that came first", got)
		}

		if err := c.CreateAlias(ctx, alias, a); err != nil {
			t.Fatal(err)
		}
		if err := c.CreateAlias(ctx, alias, b); err != nil {
			t.Fatalf("create over an existing alias: %v", err)
		}
		if got, _ := aliasTarget(t, c, alias); got != b {
			t.Errorf("create over an existing alias: it points at %s, want %s", got, b)
		}
		if err := c.DeleteAlias(ctx, uniqueName("nosuchalias")); err != nil {
			t.Errorf("delete a missing alias: %v", err)
		}
	})
}

// TestPayloadRoundTrip: Qdrant keeps payloads as JSON. Integers (to the int64 limits) come
// back as integers, doubles as doubles even when whole, and lists, objects, empty ones and
// null keep their shape; NaN and infinities have no JSON form and are rejected.
func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		name := newCollection(t, c, 2, qd.Distance_Dot)
		payload := map[string]*qd.Value{
			"int":        qd.NewValueInt(-5),
			"int_max":    qd.NewValueInt(math.MaxInt64),
			"int_min":    qd.NewValueInt(math.MinInt64),
			"beyond_f64": qd.NewValueInt(1<<53 + 1),
			"whole":      qd.NewValueDouble(2),
			"double":     qd.NewValueDouble(1.5),
			"huge":       qd.NewValueDouble(1e300),
			"string":     qd.NewValueString("Выборы \"quoted\" \x00 nul"),
			"empty_str":  qd.NewValueString(""),
			"bool":       qd.NewValueBool(false),
			"null":       qd.NewValueNull(),
			"empty_list": qd.NewValueFromList(),
			"list":       qd.NewValueFromList(qd.NewValueInt(1), qd.NewValueDouble(2.5), qd.NewValueString("x"), qd.NewValueNull()),
			"empty_obj":  qd.NewValueStruct(&qd.Struct{Fields: map[string]*qd.Value{}}),
			"obj": qd.NewValueStruct(&qd.Struct{Fields: map[string]*qd.Value{
				"rev":   qd.NewValueInt(7),
				"names": qd.NewValueFromList(qd.NewValueString("a")),
				"inner": qd.NewValueStruct(&qd.Struct{Fields: map[string]*qd.Value{"f": qd.NewValueDouble(0.25)}}),
			}}),
		}
		upsert(t, c, name, &qd.PointStruct{Id: qd.NewIDNum(1), Vectors: qd.NewVectors(1, 0), Payload: payload})
		pts, err := c.Get(ctx, &qd.GetPoints{CollectionName: name, Ids: []*qd.PointId{qd.NewIDNum(1)}, WithPayload: qd.NewWithPayload(true)})
		if err != nil || len(pts) != 1 {
			t.Fatalf("get: %v, %v", pts, err)
		}
		got := pts[0].GetPayload()
		for _, k := range slices.Sorted(maps.Keys(payload)) {
			if !proto.Equal(got[k], payload[k]) {
				t.Errorf("%s: stored %v, read back %v", k, payload[k], got[k])
			}
		}
		if len(got) != len(payload) {
			t.Errorf("%d fields read back, %d stored", len(got), len(payload))
		}

		for _, bad := range []struct {
			name string
			v    *qd.Value
		}{
			{"NaN", qd.NewValueDouble(math.NaN())},
			{"+Inf", qd.NewValueDouble(math.Inf(1))},
			{"-Inf in a list", qd.NewValueFromList(qd.NewValueDouble(math.Inf(-1)))},
			{"NaN in an object", qd.NewValueStruct(&qd.Struct{Fields: map[string]*qd.Value{"x": qd.NewValueDouble(math.NaN())}})},
		} {
			_, err := c.Upsert(ctx, &qd.UpsertPoints{CollectionName: name, Wait: qd.PtrOf(true),
				Points: []*qd.PointStruct{{Id: qd.NewIDNum(2), Vectors: qd.NewVectors(1, 0), Payload: map[string]*qd.Value{"x": bad.v}}}})
			wantCode(t, "upsert a payload with "+bad.name, err, codes.InvalidArgument)
			_, err = c.SetPayload(ctx, &qd.SetPayloadPoints{CollectionName: name, Wait: qd.PtrOf(true),
				Payload: map[string]*qd.Value{"x": bad.v}, PointsSelector: qd.NewPointsSelector(qd.NewIDNum(1))})
			wantCode(t, "set a payload with "+bad.name, err, codes.InvalidArgument)
		}
		if n := count(t, c, name, nil); n != 1 {
			t.Errorf("rejected upserts stored points: count %d", n)
		}
	})
}

// TestWriteWithoutWait: a write without wait=true is answered as Acknowledged before it is
// applied, and becomes visible later; with wait=true it is Completed and visible at once.
// (So every write that a read depends on must wait.)
func TestWriteWithoutWait(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		c := qdranttest.Dial(t, addr)
		ctx := context.Background()
		name := newCollection(t, c, 2, qd.Distance_Dot)
		pts := make([]*qd.PointStruct, 2000)
		for i := range pts {
			pts[i] = pt(uint64(i+1), []float32{1, float32(i)}, map[string]any{"i": i})
		}
		res, err := c.Upsert(ctx, &qd.UpsertPoints{CollectionName: name, Points: pts})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetStatus() != qd.UpdateStatus_Acknowledged {
			t.Errorf("write without wait: status %v, want Acknowledged", res.GetStatus())
		}
		// Visible eventually. (Whether a read right after the answer misses it depends on
		// timing, so that is not asserted.)
		deadline := time.Now().Add(10 * time.Second)
		for count(t, c, name, nil) != uint64(len(pts)) {
			if time.Now().After(deadline) {
				t.Fatalf("the write without wait is not visible after 10s: %d points", count(t, c, name, nil))
			}
			time.Sleep(5 * time.Millisecond)
		}

		// An un-waited delete followed by a waited upsert: applied in order.
		if _, err := c.Delete(ctx, &qd.DeletePoints{CollectionName: name, Points: qd.NewPointsSelector(qd.NewIDNum(1), qd.NewIDNum(2))}); err != nil {
			t.Fatal(err)
		}
		res, err = c.Upsert(ctx, &qd.UpsertPoints{CollectionName: name, Wait: qd.PtrOf(true), Points: []*qd.PointStruct{pt(2, []float32{0, 1}, nil)}})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetStatus() != qd.UpdateStatus_Completed {
			t.Errorf("write with wait: status %v, want Completed", res.GetStatus())
		}
		if ids := scrollIDs(t, c, name, &qd.Filter{Must: []*qd.Condition{qd.NewHasID(qd.NewIDNum(1), qd.NewIDNum(2))}}, 10); !slices.Equal(ids, []string{"2"}) {
			t.Errorf("after an un-waited delete of 1, 2 and a waited upsert of 2: %v, want [2]", ids)
		}

		// Without wait, a write that fails when applied is answered as accepted and lost.
		res, err = c.Upsert(ctx, &qd.UpsertPoints{CollectionName: name, Points: []*qd.PointStruct{pt(1, []float32{1, 2, 3}, nil)}})
		if err != nil || res.GetStatus() != qd.UpdateStatus_Acknowledged {
			t.Errorf("un-waited upsert of a 3-dimensional vector: %v, %v; want Acknowledged", res, err)
		}
		// A waited write is applied after every earlier one.
		upsert(t, c, name, pt(3, []float32{1, 1}, nil))
		if ids := scrollIDs(t, c, name, &qd.Filter{Must: []*qd.Condition{qd.NewHasID(qd.NewIDNum(1), qd.NewIDNum(3))}}, 10); !slices.Equal(ids, []string{"3"}) {
			t.Errorf("after the lost upsert of 1 and a waited upsert of 3: %v, want [3]", ids)
		}
	})
}

// helpers

func aliasTarget(t *testing.T, c *qd.Client, alias string) (string, bool) {
	t.Helper()
	all, err := c.ListAliases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.GetAliasName() == alias {
			return d.GetCollectionName(), true
		}
	}
	return "", false
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func newCollection(t *testing.T, c *qd.Client, size uint64, d qd.Distance) string {
	t.Helper()
	name := uniqueName("qdranttest")
	if err := c.CreateCollection(context.Background(), &qd.CreateCollection{CollectionName: name,
		VectorsConfig: qd.NewVectorsConfig(&qd.VectorParams{Size: size, Distance: d})}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ok, _ := c.CollectionExists(ctx, name); ok {
			_ = c.DeleteCollection(ctx, name)
		}
	})
	return name
}

func pt(id uint64, v []float32, payload map[string]any) *qd.PointStruct {
	return &qd.PointStruct{Id: qd.NewIDNum(id), Vectors: qd.NewVectors(v...), Payload: qd.NewValueMap(payload)}
}

func upsert(t *testing.T, c *qd.Client, name string, pts ...*qd.PointStruct) {
	t.Helper()
	if _, err := c.Upsert(context.Background(), &qd.UpsertPoints{CollectionName: name, Points: pts, Wait: qd.PtrOf(true)}); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, c *qd.Client, name string, f *qd.Filter) uint64 {
	t.Helper()
	n, err := c.Count(context.Background(), &qd.CountPoints{CollectionName: name, Filter: f, Exact: qd.PtrOf(true)})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func scrollIDs(t *testing.T, c *qd.Client, name string, f *qd.Filter, page uint32) []string {
	t.Helper()
	var ids []string
	var offset *qd.PointId
	for {
		pts, next, err := c.ScrollAndOffset(context.Background(), &qd.ScrollPoints{CollectionName: name, Filter: f, Offset: offset, Limit: &page})
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) > int(page) {
			t.Fatalf("page of %d points, limit %d", len(pts), page)
		}
		for _, p := range pts {
			ids = append(ids, idString(p.GetId()))
		}
		if next == nil {
			return ids
		}
		offset = next
	}
}

func payloadOf(t *testing.T, c *qd.Client, name string, id uint64) map[string]int64 {
	t.Helper()
	pts, err := c.Get(context.Background(), &qd.GetPoints{CollectionName: name, Ids: []*qd.PointId{qd.NewIDNum(id)}, WithPayload: qd.NewWithPayload(true)})
	if err != nil || len(pts) != 1 {
		t.Fatalf("get %d: %v, %v", id, pts, err)
	}
	out := map[string]int64{}
	for k, v := range pts[0].GetPayload() {
		out[k] = v.GetIntegerValue()
	}
	return out
}

func idString(id *qd.PointId) string {
	if u := id.GetUuid(); u != "" {
		return u
	}
	return fmt.Sprint(id.GetNum())
}

func vectorOf(p *qd.RetrievedPoint) []float32 {
	v := p.GetVectors().GetVector()
	if d := v.GetDense(); d != nil {
		return d.GetData()
	}
	//lint:ignore SA1019 a real Qdrant before 1.13 answers in the deprecated data field
	return v.GetData()
}

func approx(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			return false
		}
	}
	return true
}

func cosine(a, b []float32) float32 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return float32(dot / math.Sqrt(na*nb))
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, code)
	}
}
