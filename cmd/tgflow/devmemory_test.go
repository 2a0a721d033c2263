package main

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/tgflow/tgflow/internal/config"
)

func TestParseMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int64
		err  bool
	}{
		{name: "mebibytes", in: "256MiB", want: 256 << 20},
		{name: "gibibytes", in: "1GiB", want: 1 << 30},
		{name: "kibibytes", in: "512KiB", want: 512 << 10},
		{name: "bytes with unit", in: "1000B", want: 1000},
		{name: "bare bytes", in: "1048576", want: 1 << 20},
		{name: "off", in: "off", want: math.MaxInt64},
		{name: "empty", in: "", err: true},
		{name: "zero", in: "0MiB", err: true},
		{name: "negative", in: "-1GiB", err: true},
		{name: "decimal unit", in: "256MB", err: true},
		{name: "overflow", in: "9999999999TiB", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemoryLimit(tc.in)
			if tc.err {
				if !errors.Is(err, errMemoryLimit) {
					t.Fatalf("parseMemoryLimit(%q) = %d, %v; want errMemoryLimit", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseMemoryLimit(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestDevMemoryLimitDefaultAndGOMEMLIMIT: dev bounds its Go heap by default (256 MiB, 512
// MiB with the use embedder, the default one), and GOMEMLIMIT, when set, is left to the
// runtime.
func TestDevMemoryLimitDefaultAndGOMEMLIMIT(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mem devMemory
	if err := config.Load(&mem, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	before := debug.SetMemoryLimit(-1)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int64
	}{
		{name: "default embedder (use)", env: map[string]string{}, want: 512 << 20},
		{name: "use", env: map[string]string{"TGFLOW_EMBEDDER": "use"}, want: 512 << 20},
		{name: "hashing", env: map[string]string{"TGFLOW_EMBEDDER": "hashing"}, want: 256 << 20},
	} {
		restore := applyDevMemoryLimit(mem, tc.env, log)
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("%s: default limit %d, want %d", tc.name, got, tc.want)
		}
		restore()
	}
	set := devMemory{MemoryLimit: "1GiB"}
	restore := applyDevMemoryLimit(set, map[string]string{"TGFLOW_EMBEDDER": "hashing"}, log)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("TGFLOW_DEV_MEMORY_LIMIT=1GiB: limit %d", got)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("after restore the limit is %d, want the previous %d", got, before)
	}
	restore = applyDevMemoryLimit(mem, map[string]string{"GOMEMLIMIT": "1GiB"}, log)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set the limit changed to %d", got)
	}
	restore()
	if err := config.Load(&mem, map[string]string{"TGFLOW_DEV_MEMORY_LIMIT": "256MB"}); err == nil {
		t.Error("TGFLOW_DEV_MEMORY_LIMIT=256MB (a decimal unit) was accepted")
	}
}
