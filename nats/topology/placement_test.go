package topology

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestWhilePlacingRetriesOnlyWhatAClusterSaysNotNow: a create the cluster cannot place yet
// (a peer offline while the cluster forms, no meta leader, no responder) is retried until it
// succeeds; any other error is returned at once; a placement that never comes is given up
// after placementWait with the cluster's own error.
func TestWhilePlacingRetriesOnlyWhatAClusterSaysNotNow(t *testing.T) {
	noPeers := &jetstream.APIError{Code: 400, ErrorCode: errCodeClusterNoPeers, Description: "no suitable peers for placement, peer offline"}
	notAvail := &jetstream.APIError{Code: 503, ErrorCode: errCodeClusterNotAvail, Description: "JetStream system temporarily unavailable"}
	bad := &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest, Description: "bad request"}
	for _, tc := range []struct {
		name      string
		errs      []error // what each call returns; after the last, nil
		wantCalls int
		wantErr   error
	}{
		{name: "peer offline, then placed", errs: []error{noPeers, fmt.Errorf("objectstore media: %w", noPeers)}, wantCalls: 3},
		{name: "no meta leader, then placed", errs: []error{notAvail}, wantCalls: 2},
		{name: "no responders, then placed", errs: []error{nats.ErrNoResponders}, wantCalls: 2},
		{name: "another error is not retried", errs: []error{bad}, wantCalls: 1, wantErr: bad},
		{name: "success at once", wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := whilePlacing(context.Background(), func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) {
				t.Fatalf("%d calls, error %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}

	t.Run("gives up after placementWait", func(t *testing.T) {
		old := placementWait
		placementWait = 500 * time.Millisecond
		t.Cleanup(func() { placementWait = old })
		calls := 0
		err := whilePlacing(context.Background(), func() error { calls++; return noPeers })
		if !errors.Is(err, noPeers) || calls < 2 {
			t.Fatalf("%d calls, error %v; want the cluster's error after more than one try", calls, err)
		}
	})
}
