// Package neo4j is the Neo4j read model of tgflow: channels, posts, tags, topics, linked
// pages and their domains, images with their labels and near-duplicates, albums and trends
// as a graph, built only from facts of the log. Related reads it for related posts.
//
// Every node has a key guarded by a uniqueness constraint created at start. Apply
// runs one transaction per batch: it locks and reads the checkpoint node, skips facts at or
// below it, reads the stored state of the batch's posts, pages and channels, folds the facts in
// Go exactly as applying them one at a time would (stale revisions and facts about deleted
// posts drop out there), then writes the outcome with one UNWIND statement per kind of write
// and stores the new checkpoint before the commit. The graph model, the version rules and
// the in-place rebuild are described in README.md next to this file.
package neo4j

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/projections"
)

// Name is the projection's name and the key of its checkpoint node.
const Name = "neo4j"

var (
	// ErrRebuilding is returned (together with projections.ErrBackend, so the runtime backs
	// off and retries) by the live projection while a rebuild refills the graph in place.
	ErrRebuilding = errors.New("graph is being rebuilt in place")
	// ErrNotShadow is returned by Swap for a projection that is not the current shadow, and
	// by a shadow's Apply once its rebuild was swapped live or dropped.
	ErrNotShadow = errors.New("not the current shadow of this projection")
)

// Projection writes the graph. It implements projections.Rebuilder.
type Projection struct {
	driver nd.DriverWithContext
	opts   Options
	// rebuild is the token of the rebuild this handle fills; empty for the live projection.
	rebuild string
}

var (
	_ projections.Projection = (*Projection)(nil)
	_ projections.Rebuilder  = (*Projection)(nil)
)

// New creates the constraints and indexes (if they do not exist yet) and the checkpoint
// node, and returns the live projection. The driver stays the caller's: Close does not close
// it.
func New(ctx context.Context, driver nd.DriverWithContext, opts Options) (*Projection, error) {
	if driver == nil {
		return nil, errors.New("neo4j projection: nil driver")
	}
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Projection{driver: driver, opts: opts}
	if err := p.ensureSchema(ctx); err != nil {
		return nil, err
	}
	err := p.write(ctx, "init checkpoint", func(tx nd.ExplicitTransaction) error {
		return exec(ctx, tx, `MERGE (c:Checkpoint {projection: $name}) ON CREATE SET c.seq = 0`, map[string]any{"name": Name})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Name is "neo4j".
func (p *Projection) Name() string { return Name }

// Close releases nothing: the driver belongs to the caller.
func (p *Projection) Close() error { return nil }

// Checkpoint returns the last applied sequence. During an in-place rebuild the live
// projection and the shadow share the graph, so both report the rebuild's progress.
func (p *Projection) Checkpoint(ctx context.Context) (uint64, error) {
	var seq int64
	err := p.read(ctx, "read checkpoint", func(tx nd.ExplicitTransaction) error {
		return query(ctx, tx, `MATCH (c:Checkpoint {projection: $name}) RETURN c.seq`, map[string]any{"name": Name},
			func(r *nd.Record) error {
				seq, _ = r.Values[0].(int64)
				return nil
			})
	})
	return uint64(seq), err
}

func (p *Projection) session(ctx context.Context, mode nd.AccessMode) nd.SessionWithContext {
	return p.driver.NewSession(ctx, nd.SessionConfig{DatabaseName: p.opts.Database, AccessMode: mode})
}

// write runs fn in one write transaction and commits it.
func (p *Projection) write(ctx context.Context, op string, fn func(tx nd.ExplicitTransaction) error) error {
	return p.inTx(ctx, nd.AccessModeWrite, op, fn)
}

func (p *Projection) read(ctx context.Context, op string, fn func(tx nd.ExplicitTransaction) error) error {
	return p.inTx(ctx, nd.AccessModeRead, op, fn)
}

func (p *Projection) inTx(ctx context.Context, mode nd.AccessMode, op string, fn func(tx nd.ExplicitTransaction) error) error {
	s := p.session(ctx, mode)
	defer s.Close(context.WithoutCancel(ctx)) //nolint:errcheck // nothing to do about a failed close
	tx, err := s.BeginTransaction(ctx)
	if err != nil {
		return wrap(op, err)
	}
	defer tx.Close(context.WithoutCancel(ctx)) //nolint:errcheck // rolls back unless committed
	if err := fn(tx); err != nil {
		return wrap(op, err)
	}
	return wrap(op+": commit", tx.Commit(ctx))
}

// autoCommit runs one statement in its own implicit transaction (needed for schema changes
// and for CALL … IN TRANSACTIONS).
func (p *Projection) autoCommit(ctx context.Context, op, cypher string, params map[string]any) error {
	s := p.session(ctx, nd.AccessModeWrite)
	defer s.Close(context.WithoutCancel(ctx)) //nolint:errcheck // nothing to do about a failed close
	res, err := s.Run(ctx, cypher, params)
	if err != nil {
		return wrap(op, err)
	}
	_, err = res.Consume(ctx)
	return wrap(op, err)
}

func exec(ctx context.Context, tx nd.ExplicitTransaction, cypher string, params map[string]any) error {
	res, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return err
	}
	_, err = res.Consume(ctx)
	return err
}

func query(ctx context.Context, tx nd.ExplicitTransaction, cypher string, params map[string]any, each func(*nd.Record) error) error {
	res, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return err
	}
	for res.Next(ctx) {
		if err := each(res.Record()); err != nil {
			return err
		}
	}
	return res.Err()
}

// wrap names the failed operation and marks failures of the server's availability
// (connection refused or lost, timeout, transient server errors) with projections.ErrBackend,
// which the runtime retries with backoff; Cypher and logic errors stay as they are.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, projections.ErrBackend) || !isBackend(err):
		return fmt.Errorf("neo4j %s: %w", op, err)
	}
	return fmt.Errorf("neo4j %s: %w: %w", op, projections.ErrBackend, err)
}

func isBackend(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; not the database's fault
	}
	if errors.Is(err, context.DeadlineExceeded) || nd.IsRetryable(err) {
		return true
	}
	var (
		connErr  *nd.ConnectivityError
		limitErr *nd.TransactionExecutionLimit
		dbErr    *nd.Neo4jError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &connErr), errors.As(err, &limitErr), errors.As(err, &netErr):
		return true
	case errors.As(err, &dbErr):
		return dbErr.IsRetriable() || strings.HasPrefix(dbErr.Code, "Neo.TransientError.")
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
