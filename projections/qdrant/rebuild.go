package qdrant

import (
	"context"
	"fmt"
	"time"

	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/projections"
)

// Shadow returns a projection over a new collection <alias>_v<N+1> (with its own meta
// collection and checkpoint 0), N being the live version, for the projection's space. Calling
// it again returns the same unfinished shadow with what it already holds.
func (p *Projection) Shadow(ctx context.Context) (projections.Projection, error) {
	liveVersion, err := p.liveVersion(ctx)
	if err != nil {
		return nil, err
	}
	existing, err := p.versions(ctx)
	if err != nil {
		return nil, err
	}
	version := liveVersion + 1
	for v := range existing {
		if v > liveVersion && v < version {
			version = v
		}
	}
	name := p.collectionName(version)
	if err := p.ensureCollections(ctx, name, p.opts.Space.Dim); err != nil {
		return nil, err
	}
	return &Projection{client: p.client, opts: p.opts, alias: p.alias, fixed: name, dims: map[string]int{}, skipped: map[Space]bool{}}, nil
}

// Swap points the alias at the shadow's collection with one UpdateAliases call (delete +
// create: readers see the old collection or the new one, never none), then drops the older
// collections and their meta collections. Swapping an already live shadow only cleans up.
//
// Qdrant applies the two actions one after the other and keeps the delete when the create
// fails, so a failed call can leave no alias at all: Swap then points the alias back at the
// live collection before it returns the error. (A crash between the two actions leaves the
// alias missing too; ensureLive puts it back on the live collection at the next start.)
func (p *Projection) Swap(ctx context.Context, shadow projections.Projection) error {
	s, ok := shadow.(*Projection)
	if !ok || s.fixed == "" || s.alias != p.alias {
		return fmt.Errorf("qdrant swap: %w", ErrNotShadow)
	}
	newVersion, ok := p.versionOf(s.fixed)
	if !ok {
		return fmt.Errorf("qdrant swap %s: %w", s.fixed, ErrNotShadow)
	}
	live, hasLive, err := p.liveCollection(ctx)
	if err != nil {
		return err
	}
	if !hasLive || live != s.fixed {
		actions := []*qd.AliasOperations{qd.NewAliasCreate(p.alias, s.fixed)}
		if hasLive {
			actions = append([]*qd.AliasOperations{qd.NewAliasDelete(p.alias)}, actions...)
		}
		if err := p.client.UpdateAliases(ctx, actions); err != nil {
			err = wrap("swap alias "+p.alias+" to "+s.fixed, err)
			if hasLive {
				return p.restoreAlias(ctx, live, err)
			}
			return err
		}
	}
	existing, err := p.versions(ctx)
	if err != nil {
		return err
	}
	for v, name := range existing {
		if v < newVersion {
			if err := p.dropPair(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreAlias points the alias back at live after a failed swap, if the swap left it
// missing, and returns swapErr with what the restore did. It runs even when ctx is done (a
// cancelled swap must not leave readers without an alias), bounded by restoreTimeout.
func (p *Projection) restoreAlias(ctx context.Context, live string, swapErr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	_, ok, err := p.liveCollection(ctx)
	if err != nil {
		return fmt.Errorf("%w; and the alias could not be checked: %w", swapErr, err)
	}
	if ok {
		return swapErr
	}
	if err := p.client.CreateAlias(ctx, p.alias, live); err != nil {
		return fmt.Errorf("%w; the alias is missing and could not be pointed back at %s (the next start does): %w",
			swapErr, live, wrap("restore alias", err))
	}
	return fmt.Errorf("%w (the alias points at %s again)", swapErr, live)
}

// restoreTimeout bounds restoreAlias.
const restoreTimeout = 30 * time.Second

// DropShadow removes every collection newer than the live one (an unfinished rebuild).
func (p *Projection) DropShadow(ctx context.Context) error {
	liveVersion, err := p.liveVersion(ctx)
	if err != nil {
		return err
	}
	existing, err := p.versions(ctx)
	if err != nil {
		return err
	}
	for v, name := range existing {
		if v > liveVersion {
			if err := p.dropPair(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Projection) liveVersion(ctx context.Context) (int, error) {
	live, ok, err := p.liveCollection(ctx)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("qdrant: %w: %s", ErrNoAlias, p.alias)
	}
	v, ok := p.versionOf(live)
	if !ok {
		return 0, fmt.Errorf("qdrant: alias %s points at %s, not at %s_v<N>", p.alias, live, p.alias)
	}
	return v, nil
}

// dropPair deletes a data collection and its meta collection, data first: a leftover meta
// collection alone is harmless, a data collection without its state is not.
func (p *Projection) dropPair(ctx context.Context, data string) error {
	if err := p.dropCollection(ctx, data); err != nil {
		return err
	}
	return p.dropCollection(ctx, metaName(data))
}
