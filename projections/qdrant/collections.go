package qdrant

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// payloadIndexes are the indexed payload fields: the ones search filters on.
var payloadIndexes = []struct {
	field string
	typ   qd.FieldType
}{
	{"channel_id", qd.FieldType_FieldTypeInteger},
	{"channel_username", qd.FieldType_FieldTypeKeyword},
	{"tags", qd.FieldType_FieldTypeKeyword},
	{"topics", qd.FieldType_FieldTypeKeyword},
	{"posted_at", qd.FieldType_FieldTypeInteger},
	{"has_media", qd.FieldType_FieldTypeBool},
	{"link_domains", qd.FieldType_FieldTypeKeyword},
	{"page_domains", qd.FieldType_FieldTypeKeyword},
	{"lang", qd.FieldType_FieldTypeKeyword},
	{"grouped_id", qd.FieldType_FieldTypeInteger},
}

// target is the pair of collections one call works on.
type target struct {
	data string
	meta string
	dim  int
}

func metaName(collection string) string { return metaPrefix + collection }

func (p *Projection) collectionName(version int) string {
	return p.alias + "_v" + strconv.Itoa(version)
}

// versionOf parses "<alias>_v<N>".
func (p *Projection) versionOf(collection string) (int, bool) {
	rest, ok := strings.CutPrefix(collection, p.alias+"_v")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// target resolves the collections to use now: the shadow's own, or wherever the alias points.
func (p *Projection) target(ctx context.Context) (target, error) {
	data := p.fixed
	if data == "" {
		live, ok, err := p.liveCollection(ctx)
		if err != nil {
			return target{}, err
		}
		if !ok {
			return target{}, fmt.Errorf("qdrant: %w: %s", ErrNoAlias, p.alias)
		}
		data = live
	}
	dim, err := p.dimOf(ctx, data)
	if err != nil {
		return target{}, err
	}
	return target{data: data, meta: metaName(data), dim: dim}, nil
}

func (p *Projection) liveCollection(ctx context.Context) (string, bool, error) {
	return aliasTarget(ctx, p.client, p.alias)
}

func (p *Projection) dimOf(ctx context.Context, collection string) (int, error) {
	p.mu.Lock()
	dim, ok := p.dims[collection]
	p.mu.Unlock()
	if ok {
		return dim, nil
	}
	info, err := p.client.GetCollectionInfo(ctx, collection)
	if err != nil {
		return 0, wrap("collection info "+collection, err)
	}
	size := info.GetConfig().GetParams().GetVectorsConfig().GetParams().GetSize()
	if size == 0 {
		return 0, fmt.Errorf("qdrant: collection %s has no unnamed dense vector", collection)
	}
	p.mu.Lock()
	p.dims[collection] = int(size)
	p.mu.Unlock()
	return int(size), nil
}

// ensureLive makes sure the alias exists. When it is missing it points it at the oldest
// <alias>_v<N> there is, creating <alias>_v1 (and its meta collection) when there is none.
//
// The oldest, because that is the last collection the alias pointed at: Swap drops the
// older collections only after the alias has moved, and a shadow is always newer than the
// live collection. The alias goes missing with collections left behind after an interrupted
// first start (only <alias>_v1 exists), or after a swap stopped between its two alias
// actions: Qdrant applies "delete alias, create alias" one action after the other (a crash,
// or a failing create, can leave only the delete done). Adopting the newest collection there
// would serve an unfinished shadow; the oldest is the model the live projector was keeping,
// and the shadow is resumed (Shadow) and swapped by the next rebuild.
func (p *Projection) ensureLive(ctx context.Context) error {
	live, ok, err := p.liveCollection(ctx)
	if err != nil {
		return err
	}
	if ok {
		// Re-ensure the meta collection and the indexes: both are idempotent, and a start
		// interrupted after the alias but before them would otherwise stay incomplete.
		dim, err := p.dimOf(ctx, live)
		if err != nil {
			return err
		}
		return p.ensureCollections(ctx, live, dim)
	}
	names, err := p.versions(ctx)
	if err != nil {
		return err
	}
	name, dim := p.collectionName(1), p.opts.Space.Dim
	if len(names) > 0 {
		// An adopted collection keeps its own dimension, as a live one does above (a
		// rebuild for a model of another dimension may be what was interrupted).
		name = names[slices.Min(slices.Collect(maps.Keys(names)))]
		if dim, err = p.dimOf(ctx, name); err != nil {
			return err
		}
	}
	if err := p.ensureCollections(ctx, name, dim); err != nil {
		return err
	}
	if err := p.client.CreateAlias(ctx, p.alias, name); err != nil {
		return wrap("create alias "+p.alias, err)
	}
	return nil
}

// versions lists the existing <alias>_v<N> collections by N.
func (p *Projection) versions(ctx context.Context) (map[int]string, error) {
	all, err := p.client.ListCollections(ctx)
	if err != nil {
		return nil, wrap("list collections", err)
	}
	out := map[int]string{}
	for _, name := range all {
		if v, ok := p.versionOf(name); ok {
			out[v] = name
		}
	}
	return out, nil
}

// ensureCollections creates the data collection (Cosine, dim) with its payload indexes and
// its meta collection with the record of the projection's space, keeping whatever already
// exists; a collection of another space is refused (ErrSpaceMismatch).
func (p *Projection) ensureCollections(ctx context.Context, data string, dim int) error {
	if err := p.ensureCollection(ctx, data, uint64(dim), qd.Distance_Cosine); err != nil {
		return err
	}
	for _, ix := range payloadIndexes {
		if _, err := p.client.CreateFieldIndex(ctx, &qd.CreateFieldIndexCollection{
			CollectionName: data,
			FieldName:      ix.field,
			FieldType:      ix.typ.Enum(),
			Wait:           qd.PtrOf(true),
		}); err != nil {
			return wrap("create index "+data+"."+ix.field, err)
		}
	}
	meta := metaName(data)
	if err := p.ensureCollection(ctx, meta, 1, qd.Distance_Dot); err != nil {
		return err
	}
	// Snapshot filters the meta collection by kind; an index keeps that legal under
	// Qdrant's strict mode, which rejects filters on unindexed fields.
	if _, err := p.client.CreateFieldIndex(ctx, &qd.CreateFieldIndexCollection{
		CollectionName: meta,
		FieldName:      "kind",
		FieldType:      qd.FieldType_FieldTypeKeyword.Enum(),
		Wait:           qd.PtrOf(true),
	}); err != nil {
		return wrap("create index "+meta+".kind", err)
	}
	return p.ensureSpace(ctx, data)
}

func (p *Projection) ensureCollection(ctx context.Context, name string, size uint64, d qd.Distance) error {
	exists, err := p.client.CollectionExists(ctx, name)
	if err != nil {
		return wrap("check collection "+name, err)
	}
	if !exists {
		err := p.client.CreateCollection(ctx, &qd.CreateCollection{
			CollectionName: name,
			VectorsConfig:  qd.NewVectorsConfig(&qd.VectorParams{Size: size, Distance: d}),
			OnDiskPayload:  qd.PtrOf(true),
		})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return wrap("create collection "+name, err)
		}
	}
	got, err := p.dimOf(ctx, name)
	if err != nil {
		return err
	}
	if got != int(size) {
		return fmt.Errorf("qdrant: collection %s has %d dimensions, want %d: %w", name, got, size, ErrDimension)
	}
	return nil
}

// dropCollection deletes a collection; a missing one is fine.
func (p *Projection) dropCollection(ctx context.Context, name string) error {
	if _, err := p.client.GetCollectionsClient().Delete(ctx, &qd.DeleteCollection{CollectionName: name}); err != nil {
		return wrap("delete collection "+name, err)
	}
	p.mu.Lock()
	delete(p.dims, name)
	p.mu.Unlock()
	return nil
}
