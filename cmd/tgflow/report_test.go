package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type checkpointStub struct {
	seq uint64
	err error
}

func (c checkpointStub) Checkpoint(context.Context) (uint64, error) { return c.seq, c.err }

// A rebuild whose checkpoint cannot be read afterwards says so; it never prints "up to log
// seq 0" as if the model were empty.
func TestRebuildReportShowsACheckpointError(t *testing.T) {
	errDown := errors.New("connection refused")
	tests := []struct {
		name    string
		p       checkpointStub
		wantOut string
		wantErr error
	}{
		{name: "checkpoint read", p: checkpointStub{seq: 42}, wantOut: "rebuilt postgres up to log seq 42 in 1.5s and swapped it in\n"},
		{name: "checkpoint unreadable", p: checkpointStub{err: errDown}, wantErr: errDown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := reportRebuild(context.Background(), &out, "postgres", tc.p, 1500*time.Millisecond)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if out.String() != tc.wantOut {
				t.Fatalf("printed %q, want %q", out.String(), tc.wantOut)
			}
			if tc.wantErr != nil && !strings.Contains(err.Error(), "checkpoint") {
				t.Fatalf("the error does not say what failed: %v", err)
			}
		})
	}
}
