package chaintest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/enricher"
	"github.com/tgflow/tgflow/services/tagger"
)

// textEnv runs the text stages with the lexical embedder and no page fetches. The embedder
// hashes into 2,048 dimensions, where the lexical topics are right for posts using a few of a
// topic's words (at the default 256, collisions need more of them).
var textEnv = map[string]string{"TGFLOW_EMBEDDER": "hashing", "TGFLOW_HASHING_DIM": "2048", "TGFLOW_FETCH_TIMEOUT": "1s"}

const (
	retagChannel events.ChannelID = 4242
	retagText                     = "Вышел Go 1.26: новые итераторы, улучшения в стандартной библиотеке и опциональная телеметрия. " +
		"Команда Go рекомендует обновиться всем разработчикам."
	// retagOCR is what the post's picture says: words the text does not have.
	retagOCR = "КВАНТОВЫЙ ПРОЦЕССОР квантовый процессор квантовый компьютер кубиты"
)

// logFacts reads every fact on the log matching filters, in log order, with its sequence.
func logFacts(t testing.TB, js jetstream.JetStream, filters ...string) []projections.Fact {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []projections.Fact
	for pending := info.NumPending; pending > 0; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := events.Decode(events.Header(msg.Headers()), msg.Data())
			if err != nil {
				t.Fatalf("seq %d: %v", md.Sequence.Stream, err)
			}
			out = append(out, projections.Fact{Seq: md.Sequence.Stream, Event: ev})
			pending = md.NumPending
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// ofType are the payloads of type P among facts.
func ofType[P events.Payload](facts []projections.Fact) []P {
	var out []P
	for _, f := range facts {
		if p, ok := f.Event.Data.(P); ok {
			out = append(out, p)
		}
	}
	return out
}

// qdrantTarget opens a Qdrant projection of space under a fresh alias on the test server;
// its collections are dropped at cleanup.
func qdrantTarget(t *testing.T, space qdrant.Space) (*qdrant.Projection, *qd.Client) {
	t.Helper()
	addr := testenv.Require(t, "Qdrant", testenv.EnvQdrantAddr)
	client, err := qdrant.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	alias := "chain" + hex.EncodeToString(b) + "_posts"
	ctx := context.Background()
	p, err := qdrant.New(ctx, client, qdrant.Options{Alias: alias, Space: space})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close qdrant projection: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cols, err := client.ListCollections(ctx)
		if err != nil {
			t.Errorf("cleanup %s: %v", alias, err)
			return
		}
		for _, c := range cols {
			if strings.Contains(c, alias) {
				if err := client.DeleteCollection(ctx, c); err != nil {
					t.Errorf("cleanup %s: %v", c, err)
				}
			}
		}
		if err := client.Close(); err != nil {
			t.Errorf("close qdrant client: %v", err)
		}
	})
	return p, client
}

// pgRow is what the Postgres model says of the post's derived facts.
type pgRow struct {
	tags           []string
	topics         []string // by name
	tagRev, embRev events.Rev
	trigger        string
	progress       [3]events.Rev // tagged, enriched, embedded
}

func readPostgres(t *testing.T, pool *pgxpool.Pool, schema string, ref events.PostRef) pgRow {
	t.Helper()
	ctx := context.Background()
	s := `"` + schema + `"`
	var r pgRow
	rows, err := pool.Query(ctx, `SELECT tag, trigger, version, revision FROM `+s+`.post_tags WHERE channel_id=$1 AND message_id=$2 ORDER BY position`, int64(ref.ChannelID), ref.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag, &r.trigger, &r.tagRev.Version, &r.tagRev.Revision); err != nil {
			t.Fatal(err)
		}
		r.tags = append(r.tags, tag)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = pool.Query(ctx, `SELECT topic FROM `+s+`.post_topics WHERE channel_id=$1 AND message_id=$2 ORDER BY topic`, int64(ref.ChannelID), ref.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var topic string
		if err := rows.Scan(&topic); err != nil {
			t.Fatal(err)
		}
		r.topics = append(r.topics, topic)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT version, revision FROM `+s+`.post_embeddings WHERE channel_id=$1 AND message_id=$2`, int64(ref.ChannelID), ref.MessageID).
		Scan(&r.embRev.Version, &r.embRev.Revision); err != nil {
		t.Fatalf("post_embeddings: %v", err)
	}
	p := &r.progress
	if err := pool.QueryRow(ctx, `SELECT tagged_version, tagged_revision, enriched_version, enriched_revision, embedded_version, embedded_revision FROM `+s+`.pipeline_progress WHERE channel_id=$1 AND message_id=$2`, int64(ref.ChannelID), ref.MessageID).
		Scan(&p[0].Version, &p[0].Revision, &p[1].Version, &p[1].Revision, &p[2].Version, &p[2].Revision); err != nil {
		t.Fatalf("pipeline_progress: %v", err)
	}
	return r
}

// readQdrant is the post's point under the alias the projection serves: its payload and
// vector.
func readQdrant(t *testing.T, client *qd.Client, alias string, key string) (qdrant.Payload, []float32) {
	t.Helper()
	pts, err := client.Get(context.Background(), &qd.GetPoints{
		CollectionName: alias,
		Ids:            []*qd.PointId{qd.NewID(qdrant.PointID(key))},
		WithPayload:    qd.NewWithPayload(true),
		WithVectors:    qd.NewWithVectors(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 1 {
		t.Fatalf("%d points for %s, want 1", len(pts), key)
	}
	return qdrant.PayloadOf(pts[0].GetPayload()), pts[0].GetVectors().GetVector().GetDense().GetData()
}

// cosine of two vectors of one length (0 when either is zero or the lengths differ).
func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// TestVisionRetagSupersedesInReadModels runs the text stages on the embedded server: a
// post with a picture is tagged, enriched and embedded (revision 0); then the picture's
// posts.vision.analyzed arrives and the stages make a second chain of revision 1 with the
// picture's words. The facts of the log applied to the Postgres and Qdrant projections
// (real servers) first up to the end of the first chain, then to the end: the newer
// revision replaces the earlier one in both, and applying the first chain's facts again (a
// redelivery) changes nothing.
func TestVisionRetagSupersedesInReadModels(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), testenv.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	e := natstest.Start(t)
	ctx := context.Background()
	pub, err := publish.New(e.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := events.PostRef{ChannelID: retagChannel, MessageID: 7}
	post := events.Post{PostRef: ref, ChannelUsername: "gonews", Date: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC), Text: retagText,
		Media: []events.Media{{Kind: events.MediaPhoto, SHA256: strings.Repeat("ab", 32)}}}
	if _, err := pub.Publish(ctx, []events.Event{events.PostEvent(&events.PostParsed{Post: post})}); err != nil {
		t.Fatal(err)
	}
	runSpecs(t, e, textEnv, tagger.Spec(), enricher.Spec(), embedder.Spec())
	all := []string{"posts.>"}
	natstest.Eventually(t, 60*time.Second, "the first chain", func() bool { return natstest.Count(t, e.JS, "posts.embedded.>") == 1 })
	first := logFacts(t, e.JS, all...)

	vision := &events.PostVisionAnalyzed{PostRef: ref, Items: []events.VisionItem{{MediaSHA256: post.Media[0].SHA256, OCRText: retagOCR, OCRConfidence: 0.9, Width: 640, Height: 480, Format: "png"}},
		Provider: "local", AnalyzedAt: post.Date.Add(time.Minute)}
	if _, err := pub.Publish(ctx, []events.Event{events.New(events.ProducerVision, vision, vision.AnalyzedAt, "0")}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 60*time.Second, "the retag chain", func() bool { return natstest.Count(t, e.JS, "posts.embedded.>") == 2 })
	idle(t, e.JS, 30*time.Second, topology.ConsumerTagger, topology.ConsumerEnricher, topology.ConsumerEmbedder)
	facts := logFacts(t, e.JS, all...)
	second := facts[len(first):]

	// The log: two chains, the second of revision 1 triggered by the vision result.
	tagged := ofType[*events.PostTagged](facts)
	embedded := ofType[*events.PostEmbedded](facts)
	if len(tagged) != 2 || len(ofType[*events.PostEnriched](facts)) != 2 || len(embedded) != 2 {
		t.Fatalf("%d tagged, %d enriched, %d embedded; want two chains", len(tagged), len(ofType[*events.PostEnriched](facts)), len(embedded))
	}
	old, cur := tagged[0], tagged[1]
	if old.Revision != 0 || cur.Revision != 1 || cur.Trigger != events.TriggerVisionRetag || embedded[1].Revision != 1 {
		t.Fatalf("revisions: tagged %v then %v (%s), embedded %v then %v", old.Rev, cur.Rev, cur.Trigger, embedded[0].Rev, embedded[1].Rev)
	}
	names := func(ts []events.Tag) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}
	if !slices.Contains(names(old.Tags), "go") {
		t.Errorf("first tags %v lack go", names(old.Tags))
	}
	if slices.Equal(names(old.Tags), names(cur.Tags)) || !strings.Contains(strings.Join(names(cur.Tags), " "), "квантов") {
		t.Errorf("retag tags %v (were %v): the picture's words do not show", names(cur.Tags), names(old.Tags))
	}
	if slices.Equal(embedded[0].Vector, embedded[1].Vector) {
		t.Error("the retag chain embedded the same vector")
	}
	t.Logf("tags %v → %v", names(old.Tags), names(cur.Tags))
	// Topics: none from the local tagger; the embedder's, from each revision's vector.
	for _, tg := range tagged {
		if len(tg.Topics) != 0 || tg.TopicsSource != "" {
			t.Errorf("tagged rev %v has topics %q from %q: the local tagger gives none", tg.Rev, tg.Topics, tg.TopicsSource)
		}
	}
	for _, em := range embedded {
		if !strings.HasPrefix(em.TopicsSource, events.TopicsFromEmbedding+"hashing-") {
			t.Errorf("embedded rev %v: topics source %q, want the hashing embedding", em.Rev, em.TopicsSource)
		}
	}
	// The Go release post is about programming; with the picture's words about quantum
	// processors the retag's vector is no longer close enough to any topic.
	t.Logf("topics %v → %v", embedded[0].Topics, embedded[1].Topics)
	if !slices.Equal(embedded[0].Topics, []string{"programming"}) || len(embedded[1].Topics) != 0 {
		t.Errorf("topics %v → %v, want [programming] → []", embedded[0].Topics, embedded[1].Topics)
	}

	space := qdrant.SpaceOfEmbedding(embedded[0])
	pg, err := postgres.New(ctx, pool, "chain")
	if err != nil {
		t.Fatal(err)
	}
	qp, client := qdrantTarget(t, space)
	models := []projections.Projection{pg, qp}
	apply := func(facts []projections.Fact) {
		t.Helper()
		for _, m := range models {
			if err := m.Apply(ctx, facts); err != nil {
				t.Fatalf("%s: %v", m.Name(), err)
			}
		}
	}
	// Qdrant normalises what it stores for the cosine distance: a vector is the revision's
	// when it is nearer to it than to the other revision's (which differs: checked above).
	vectorOf := func(vec []float32) int {
		if c0, c1 := cosine(vec, embedded[0].Vector), cosine(vec, embedded[1].Vector); c0 > 0.9999 && c0 > c1 {
			return 0
		} else if c1 > 0.9999 {
			return 1
		}
		return -1
	}
	check := func(when string, tagged *events.PostTagged, emb *events.PostEmbedded) {
		t.Helper()
		r := readPostgres(t, pool, "chain", ref)
		if !slices.Equal(r.tags, names(tagged.Tags)) || r.tagRev != tagged.Rev || r.trigger != tagged.Trigger || r.embRev != emb.Rev ||
			r.progress != [3]events.Rev{tagged.Rev, tagged.Rev, emb.Rev} {
			t.Errorf("%s: postgres has tags %v (rev %v, %s), embedding rev %v, progress %v; want tags %v of rev %v", when, r.tags, r.tagRev, r.trigger, r.embRev, r.progress, names(tagged.Tags), tagged.Rev)
		}
		pl, vec := readQdrant(t, client, qp.Alias(), ref.Key())
		if !slices.Equal(pl.Tags, names(tagged.Tags)) || vectorOf(vec) != emb.Revision {
			t.Errorf("%s: qdrant has tags %v and the vector of revision %d; want tags %v and revision %d's vector", when, pl.Tags, vectorOf(vec), names(tagged.Tags), emb.Revision)
		}
		wantTopics := slices.Sorted(slices.Values(emb.Topics))
		if !slices.Equal(r.topics, wantTopics) || !slices.Equal(pl.Topics, emb.Topics) {
			t.Errorf("%s: postgres topics %v, qdrant topics %v; want revision %d's %v", when, r.topics, pl.Topics, emb.Revision, emb.Topics)
		}
		if tagged.Revision == 1 && !strings.Contains(pl.OCRText, "КВАНТОВЫЙ") {
			t.Errorf("%s: qdrant OCR excerpt %q", when, pl.OCRText)
		}
	}
	apply(first)
	check("after the first chain", old, embedded[0])
	apply(second)
	check("after the retag chain", cur, embedded[1])
	// A redelivered batch of the first chain (the checkpoint skips it) and the older
	// revision's facts again under new sequences (a replayed copy) change nothing.
	apply(first)
	last := facts[len(facts)-1].Seq
	var again []projections.Fact
	for i, f := range first {
		if _, ok := f.Event.Data.(*events.PostParsed); !ok {
			again = append(again, projections.Fact{Seq: last + uint64(i) + 1, Event: f.Event})
		}
	}
	apply(again)
	check("after the first chain's facts again", cur, embedded[1])
	if t.Failed() {
		for _, f := range facts {
			t.Logf("seq %d %s %s", f.Seq, f.Event.Type, fmt.Sprint(f.Event.Subject))
		}
	}
}
