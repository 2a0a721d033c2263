package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tgflow/tgflow/projections"
)

var (
	// ErrSwapped is returned by a shadow projection used after Swap made it the live schema:
	// use the live projection instead.
	ErrSwapped = errors.New("shadow was swapped live")
	// ErrShadowBehind is returned by Swap when the shadow has applied fewer facts than the
	// live model: swapping it would move the read model back in time.
	ErrShadowBehind = errors.New("shadow is behind the live model")
	// ErrNotShadow is returned by Swap for a projection that is not this projection's shadow.
	ErrNotShadow = errors.New("not the shadow of this projection")
)

// backend wraps err with projections.ErrBackend when it is a failure of the database's
// availability (connection lost, server shutting down, out of resources, timeout, lock or
// serialization conflict), which the runtime retries; SQL and logic errors stay as they are.
func backend(op string, err error) error {
	if err == nil {
		return nil
	}
	if isBackend(err) {
		return fmt.Errorf("postgres %s: %w: %w", op, projections.ErrBackend, err)
	}
	return fmt.Errorf("postgres %s: %w", op, err)
}

func isBackend(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; not the database's fault
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"40", // transaction rollback: serialization failure, deadlock
			"53", // insufficient resources: disk full, out of memory, too many connections
			"57", // operator intervention: shutdown, query canceled (statement timeout)
			"58": // system error: I/O
			return true
		}
		return pgErr.Code == "55P03" // lock_not_available
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
