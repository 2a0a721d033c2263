package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseKey is the key of the scheduler lease in the leases bucket.
const LeaseKey = "ingest-scheduler"

// ErrLeaseLost is returned when another owner holds the lease at a renewal.
var ErrLeaseLost = errors.New("ingest: scheduler lease lost")

// lease is the one active scheduler among ingest processes: an entry in the leases bucket
// naming its owner and when it expires. It is taken with a create (absent key) or a
// compare-and-set on the entry's revision (expired entry), and renewed by compare-and-set,
// so two processes can never both believe they hold it. The bucket's TTL (1m) removes the
// entry of a process that died without releasing it.
type lease struct {
	kv    jetstream.KeyValue
	owner string
	ttl   time.Duration
	now   func() time.Time
	rev   uint64
}

type leaseValue struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

func (l *lease) value() []byte {
	b, _ := json.Marshal(leaseValue{Owner: l.owner, Expires: l.now().Add(l.ttl)})
	return b
}

// acquire takes the lease if it is free, expired or already ours.
func (l *lease) acquire(ctx context.Context) (bool, error) {
	e, err := l.kv.Get(ctx, LeaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err := l.kv.Create(ctx, LeaseKey, l.value())
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("lease: %w", err)
		}
		l.rev = rev
		return true, nil
	case err != nil:
		return false, fmt.Errorf("lease: %w", err)
	}
	var cur leaseValue
	if json.Unmarshal(e.Value(), &cur) == nil && cur.Owner != l.owner && l.now().Before(cur.Expires) {
		return false, nil
	}
	rev, err := l.kv.Update(ctx, LeaseKey, l.value(), e.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease: %w", err)
	}
	l.rev = rev
	return true, nil
}

// renew extends a held lease; ErrLeaseLost when someone else took it.
func (l *lease) renew(ctx context.Context) error {
	rev, err := l.kv.Update(ctx, LeaseKey, l.value(), l.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	l.rev = rev
	return nil
}

// release gives the lease up so another process takes it at once. A failed release is
// returned: the other processes then wait for the lease to expire.
func (l *lease) release(ctx context.Context) error {
	if l.rev == 0 {
		return nil
	}
	err := l.kv.Delete(ctx, LeaseKey, jetstream.LastRevision(l.rev))
	l.rev = 0
	if err != nil {
		return fmt.Errorf("lease: release: %w", err)
	}
	return nil
}

// hold keeps the lease while ctx lives, renewing it every third of its TTL; the returned
// context ends when the lease is lost or ctx ends. The returned func releases the lease.
func (l *lease) hold(ctx context.Context) (context.Context, func() error) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		renewed := l.now()
		for {
			select {
			case <-held.Done():
				return
			case <-t.C:
				rctx, rcancel := context.WithTimeout(held, l.ttl/3)
				err := l.renew(rctx)
				rcancel()
				if err == nil {
					renewed = l.now()
					continue
				}
				// A failed renewal (NATS unreachable) is retried at the next tick, until
				// the lease would have expired: then another process may hold it.
				if errors.Is(err, ErrLeaseLost) || l.now().Sub(renewed) >= l.ttl {
					cancel(ErrLeaseLost)
					return
				}
			}
		}
	}()
	return held, func() error {
		cancel(nil)
		<-done
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		return l.release(rctx)
	}
}
