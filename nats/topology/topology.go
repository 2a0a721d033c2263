// Package topology declares tgflow's whole JetStream topology as code: the log stream, the
// DLQ stream, the KV buckets, the media object store and every durable consumer. Apply
// creates or updates all of it idempotently; the same stream and consumer configs are
// committed as JSON files under nats/ that `nats stream add --config` and
// `nats consumer add --config` accept (see WriteFiles and the test that keeps them equal).
package topology

import (
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
)

// Stream names.
const (
	LogStream = "TGFLOW"
	DLQStream = "DLQ"
)

// ReplayPrefix is the subject prefix of targeted redeliveries: a message published to
// replay.<consumer>.<original subject> reaches only that consumer.
const ReplayPrefix = "replay"

// DLQPrefix is the subject prefix of dead-lettered messages: dlq.<consumer>.
const DLQPrefix = "dlq"

// Bucket names.
const (
	BucketCursors  = "ingest-cursors"
	BucketChannels = "channels"
	BucketSession  = "tg-session"
	BucketAlbums   = "albums"
	BucketLeases   = "leases"
	BucketTrends   = "trends"
	BucketImported = "import-ledger"
	BucketPages    = "enricher-pages"
	BucketTagPosts = "tagger-posts"
	BucketTagDF    = "tagger-df"
	ObjectMedia    = "media"
	ObjectPages    = "pages"
)

// Consumer names: fixed and versioned. Renaming one re-consumes the whole log; bump the
// version suffix only when that is what you mean.
const (
	ConsumerIngest       = "ingest"
	ConsumerVision       = "vision"
	ConsumerTagger       = "tagger"
	ConsumerEnricher     = "enricher"
	ConsumerEmbedder     = "embedder"
	ConsumerAlbums       = "albums"
	ConsumerTrends       = "trends"
	ConsumerProjPostgres = "proj-postgres-v1"
	ConsumerProjQdrant   = "proj-qdrant-v1"
	ConsumerProjNeo4j    = "proj-neo4j-v1"
)

// LogSubjects are the subjects of the log stream.
var LogSubjects = []string{"channels.>", "posts.>", "albums.>", "trends.>", ReplayPrefix + ".>"}

// DuplicateWindow is how long the log remembers Nats-Msg-Id values: long enough for any
// retried publish. Deterministic event ids and version-aware projections cover the rest.
const DuplicateWindow = 2 * time.Hour

// LogStreamConfig is the source of truth: limits retention, file storage, no age limit,
// deletes and purges denied. Discard "new": at a capacity limit the log refuses new facts
// rather than deleting old ones that a projection rebuild needs.
func LogStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              LogStream,
		Description:       "tgflow facts: the source of truth. Never trimmed by consumers.",
		Subjects:          slices.Clone(LogSubjects),
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardNew,
		MaxAge:            0,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        8 << 20,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Duplicates:        DuplicateWindow,
		Replicas:          1,
		DenyDelete:        true,
		DenyPurge:         true,
		AllowDirect:       true,
	}
}

// DLQStreamConfig keeps every dead message with its reason. Operators may delete entries
// once replayed or judged, so deletes are allowed here.
func DLQStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              DLQStream,
		Description:       "tgflow dead letters: the original message plus Tgflow-Dlq-* headers.",
		Subjects:          []string{DLQPrefix + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardNew,
		MaxAge:            0,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        16 << 20,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Duplicates:        DuplicateWindow,
		Replicas:          1,
	}
}

// Streams returns every stream config.
func Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{LogStreamConfig(), DLQStreamConfig()}
}

// Kind says what a consumer feeds.
type Kind string

// Consumer kinds.
const (
	KindStage      Kind = "stage"
	KindProjection Kind = "projection"
)

// Consumer declares one durable consumer of the log.
type Consumer struct {
	Name string
	Kind Kind
	// Inputs are the event types the consumer reads.
	Inputs []events.Type
	// Producer is the producer name of what a stage writes ("" for projections).
	Producer string
	Doc      string
}

// Filters are the consumer's filter subjects: one per input type, plus its replay subject.
func (c Consumer) Filters() []string {
	var out []string
	for _, t := range c.Inputs {
		s, ok := events.Lookup(t)
		if !ok {
			panic(fmt.Sprintf("topology: consumer %s reads unregistered type %s", c.Name, t))
		}
		out = append(out, s.Filter())
	}
	return append(out, ReplaySubject(c.Name, ">"))
}

// ReplaySubject is the subject that redelivers a message to one consumer only.
func ReplaySubject(consumer, original string) string {
	return ReplayPrefix + "." + consumer + "." + original
}

// DLQSubject is the subject of a consumer's dead letters.
func DLQSubject(consumer string) string { return DLQPrefix + "." + consumer }

// Delivery settings. Stages get a bounded number of deliveries, then the DLQ; projections
// retry forever, because a projection that skips a fact diverges from the log.
//
// The first backoff is the ack wait: how long facts held by a process that died (SIGKILL,
// OOM, a lost node) stay invisible before the server delivers them again. A projector
// applies in log order, so after a restart it waits for the facts its dead predecessor held:
// its ack wait is short, and safe to be, since the projector holds a whole batch (at most
// the consumer's max ack pending) and keeps it alive with InProgress every third of the wait
// while it applies (nats/worker). A stage's pulled messages may wait in the client's buffer
// behind slow work that no keep-alive covers, so its ack wait stays long; a restarted stage
// needs no predecessor's messages to make progress (tested in cmd/tgflow/internal/proctest).
var (
	StageBackOff      = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}
	StageMaxDeliver   = 8
	ProjectionBackOff = []time.Duration{5 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}
	MaxAckPending     = 1000
	// ProjectionMaxAckPending keeps a projection's unacked window to one batch, so a batch
	// that fails cannot be overtaken by the next one: facts are applied in log order.
	ProjectionMaxAckPending = 500
)

// Config is the JetStream consumer config of c.
func (c Consumer) Config() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Name:           c.Name,
		Durable:        c.Name,
		Description:    c.Doc,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
		FilterSubjects: c.Filters(),
		MaxWaiting:     512,
	}
	switch c.Kind {
	case KindProjection:
		cfg.BackOff = slices.Clone(ProjectionBackOff)
		cfg.MaxDeliver = -1
		cfg.MaxAckPending = ProjectionMaxAckPending
	default:
		cfg.BackOff = slices.Clone(StageBackOff)
		cfg.MaxDeliver = StageMaxDeliver
		cfg.MaxAckPending = MaxAckPending
	}
	cfg.AckWait = cfg.BackOff[0]
	return cfg
}

var allFacts = func() []events.Type {
	var out []events.Type
	for _, s := range events.Specs() {
		out = append(out, s.Type)
	}
	return out
}

// Consumers returns every durable consumer of the log, in a fixed order.
func Consumers() []Consumer {
	return []Consumer{
		{Name: ConsumerIngest, Kind: KindStage, Producer: events.ProducerIngest,
			Inputs: []events.Type{events.TypeChannelSubscribed, events.TypeChannelUnsubscribed},
			Doc:    "ingest: channel subscriptions → Telegram reads"},
		{Name: ConsumerVision, Kind: KindStage, Producer: events.ProducerVision,
			Inputs: []events.Type{events.TypePostParsed, events.TypePostEdited},
			Doc:    "vision: describe images, OCR, perceptual hash (an edit may replace the media)"},
		{Name: ConsumerTagger, Kind: KindStage, Producer: events.ProducerTagger,
			Inputs: []events.Type{events.TypePostParsed, events.TypePostEdited, events.TypePostVisionAnalyzed, events.TypePostDeleted},
			Doc:    "tagger: 1–5 normalized tags per post revision (a deleted post is not tagged again)"},
		{Name: ConsumerEnricher, Kind: KindStage, Producer: events.ProducerEnricher,
			Inputs: []events.Type{events.TypePostTagged},
			Doc:    "enricher: fetch linked pages, extract readable text"},
		{Name: ConsumerEmbedder, Kind: KindStage, Producer: events.ProducerEmbedder,
			Inputs: []events.Type{events.TypePostEnriched},
			Doc:    "embedder: one vector per post revision"},
		{Name: ConsumerAlbums, Kind: KindStage, Producer: events.ProducerAlbums,
			Inputs: []events.Type{events.TypeAlbumParsed, events.TypePostVisionAnalyzed},
			Doc:    "albums: assemble albums when analysed or at a deadline"},
		{Name: ConsumerTrends, Kind: KindStage, Producer: events.ProducerTrends,
			Inputs: []events.Type{events.TypePostTagged},
			Doc:    "trends: tag bursts across channels in sliding windows"},
		{Name: ConsumerProjPostgres, Kind: KindProjection, Inputs: allFacts(),
			Doc: "projection: Postgres read model"},
		{Name: ConsumerProjQdrant, Kind: KindProjection,
			Inputs: []events.Type{events.TypePostParsed, events.TypePostEdited, events.TypePostDeleted, events.TypePostTagged,
				events.TypePostEnriched, events.TypePostVisionAnalyzed, events.TypePostEmbedded},
			Doc: "projection: Qdrant vectors"},
		{Name: ConsumerProjNeo4j, Kind: KindProjection, Inputs: allFacts(),
			Doc: "projection: Neo4j graph"},
	}
}

// LookupConsumer finds a declared consumer by name.
func LookupConsumer(name string) (Consumer, bool) {
	for _, c := range Consumers() {
		if c.Name == name {
			return c, true
		}
	}
	return Consumer{}, false
}

// KeyValues returns every KV bucket config.
func KeyValues() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: BucketCursors, Description: "ingest: highest contiguous message id published, per channel", History: 5, Storage: jetstream.FileStorage},
		{Bucket: BucketChannels, Description: "ingest: channel registry snapshot (username → id, access hash)", History: 5, Storage: jetstream.FileStorage},
		{Bucket: BucketSession, Description: "ingest: Telegram session, AES-256-GCM encrypted", History: 3, Storage: jetstream.FileStorage},
		{Bucket: BucketAlbums, Description: "albums: assembly progress per grouped id (compare-and-set)", History: 1, Storage: jetstream.FileStorage},
		{Bucket: BucketLeases, Description: "leases: the one active scheduler (owner token, TTL)", History: 1, TTL: time.Minute, Storage: jetstream.FileStorage},
		{Bucket: BucketTrends, Description: "trends: sliding-window state per tag", History: 1, Storage: jetstream.FileStorage},
		{Bucket: BucketImported, Description: "import: post versions and albums already published from exports", History: 1, Storage: jetstream.FileStorage},
		{Bucket: BucketTagPosts, Description: "tagger: latest version, vision words and deletion of every post (what a vision result needs)", History: 1, Storage: jetstream.FileStorage},
		{Bucket: BucketTagDF, Description: "tagger: document-frequency snapshot with the log sequence it reflects", History: 1, Storage: jetstream.FileStorage},
		{Bucket: BucketPages, Description: "enricher: fetched page per normalised URL (a cache: one fetch serves every post linking it)", History: 1, TTL: 48 * time.Hour, Storage: jetstream.FileStorage},
	}
}

// ObjectStores returns every object store config.
func ObjectStores() []jetstream.ObjectStoreConfig {
	return []jetstream.ObjectStoreConfig{
		{Bucket: ObjectMedia, Description: "media, content-addressed: key = hex sha256", Storage: jetstream.FileStorage},
		{Bucket: ObjectPages, Description: "enricher: raw fetched pages, content-addressed: key = hex sha256", TTL: 48 * time.Hour, Storage: jetstream.FileStorage},
	}
}
