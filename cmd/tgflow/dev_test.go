package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest"
)

// syncBuffer is a bytes.Buffer safe for the service goroutines that write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeService runs until its context ends (fail nil) or returns fail at once, and records
// why its context ended.
type fakeService struct {
	fail    error
	mu      sync.Mutex
	stopped error // context.Cause of the run context when Run returned
}

func (f *fakeService) Run(ctx context.Context) error {
	if f.fail != nil {
		return f.fail
	}
	<-ctx.Done()
	f.mu.Lock()
	f.stopped = context.Cause(ctx)
	f.mu.Unlock()
	return nil
}

func (f *fakeService) cause() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

var errTestOver = errors.New("test over: the caller stopped dev")

// TestDevStopsEverythingUnlessAnOperatorIsNeeded runs fake services through runServices:
// an error from any service stops every service; an error marked services.ErrNeedsOperator
// (whichever service returns it) stops that service alone while there are others, and is
// returned when it is the only one.
func TestDevStopsEverythingUnlessAnOperatorIsNeeded(t *testing.T) {
	errBroken := errors.New("projector broken")
	errRevoked := services.NeedsOperator("proj-x: credentials revoked")
	tests := []struct {
		name       string
		fail       error
		failing    int // index of the failing service among n
		n          int
		stopsAll   bool
		wantErr    error // returned by runServices; nil for none
		wantStderr string
	}{
		{name: "any error stops all (first service)", fail: errBroken, failing: 0, n: 3, stopsAll: true, wantErr: errBroken},
		{name: "any error stops all (last service)", fail: errBroken, failing: 2, n: 3, stopsAll: true, wantErr: errBroken},
		{name: "needs an operator: others keep running", fail: errRevoked, failing: 1, n: 3, wantStderr: "svc1 stopped: proj-x: credentials revoked"},
		{name: "wrapped needs-operator error from the first service", fail: fmt.Errorf("%w: %w", errRevoked, errBroken), failing: 0, n: 2,
			wantStderr: "svc0 stopped: proj-x: credentials revoked: projector broken"},
		{name: "ingest's auth error needs an operator", fail: fmt.Errorf("%w: AUTH_KEY_UNREGISTERED", ingest.ErrTelegramAuth), failing: 1, n: 2,
			wantStderr: "svc1 stopped: ingest: the Telegram session is unusable"},
		{name: "needs an operator, alone: returned", fail: errRevoked, failing: 0, n: 1, stopsAll: true, wantErr: errRevoked},
	}
	env := natstest.Start(t)
	c := &conn{NC: env.NC, JS: env.JS}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fakes := make([]*fakeService, tc.n)
			var reg services.Registry
			for i := range fakes {
				fakes[i] = &fakeService{}
				if i == tc.failing {
					fakes[i].fail = tc.fail
				}
				f := fakes[i]
				reg = append(reg, services.Spec{Name: fmt.Sprintf("svc%d", i),
					New: func(context.Context, services.Deps) (services.Service, error) { return f, nil }})
			}
			var stdout, stderr syncBuffer
			a := &app{stdout: &stdout, stderr: &stderr, env: map[string]string{}}
			var b config.Base
			if err := config.Load(&b, map[string]string{"TGFLOW_HTTP_ADDR": ""}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			done := make(chan error, 1)
			go func() {
				done <- runServices(ctx, a, &b, c, slog.New(slog.NewTextHandler(io.Discard, nil)), reg, false, 0)
			}()
			var err error
			returned := false
			natstest.Eventually(t, 10*time.Second, "the failure to be handled", func() bool {
				select {
				case err = <-done:
					returned = true
					return true
				default:
					return tc.wantStderr != "" && strings.Contains(stderr.String(), tc.wantStderr)
				}
			})
			if returned != tc.stopsAll {
				t.Fatalf("runServices returned on its own: %v, want %v (err %v, stderr %q)", returned, tc.stopsAll, err, stderr.String())
			}
			if !returned {
				cancel(errTestOver)
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("runServices did not return after its context ended")
				}
			}
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("runServices = %v, want %v", err, tc.wantErr)
			}
			for i, f := range fakes {
				if i == tc.failing {
					continue
				}
				cause := f.cause()
				if tc.stopsAll && !errors.Is(cause, context.Canceled) {
					t.Errorf("svc%d stopped by %v, want dev to stop it", i, cause)
				}
				if !tc.stopsAll && !errors.Is(cause, errTestOver) {
					t.Errorf("svc%d stopped by %v, want it to run until the caller stopped dev", i, cause)
				}
			}
		})
	}
}

// --until-idle on a consumer it cannot read gives up with the reason, not only "not idle".
func TestWaitIdleSaysWhyItGaveUp(t *testing.T) {
	env := natstest.Start(t)
	err := waitIdle(context.Background(), env.JS, []string{"no-such-consumer"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no-such-consumer") {
		t.Fatalf("waitIdle = %v, want the consumer it could not read", err)
	}
}
