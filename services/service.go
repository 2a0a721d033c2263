// Package services holds tgflow's stages and the registry of every service the binary can
// run: `tgflow <service>` runs one, `tgflow dev` runs all of them in one process.
package services

import (
	"context"
	"errors"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/nats/worker"
)

// ErrNotConfigured is returned by a Spec's New when a backend the service needs is not
// configured (e.g. no TGFLOW_POSTGRES_URL): `tgflow dev` skips such a service and says why.
var ErrNotConfigured = errors.New("not configured")

// ErrNeedsOperator marks an error after which a service cannot work until someone acts (logs
// in again, replaces a revoked credential), while nothing is wrong with the other services:
// `tgflow dev` reports it and keeps the others running; a process running only that
// service exits with it. Any other error from a service's Run stops every service of the
// process. Declare such a sentinel with NeedsOperator, or wrap this one with %w.
var ErrNeedsOperator = errors.New("the service needs an operator")

// NeedsOperator returns a sentinel error with text msg that matches ErrNeedsOperator under
// errors.Is (its text stays msg alone).
func NeedsOperator(msg string) error { return &operatorError{msg: msg} }

type operatorError struct{ msg string }

func (e *operatorError) Error() string { return e.msg }
func (e *operatorError) Unwrap() error { return ErrNeedsOperator }

// Deps are what every service gets from its wiring.
type Deps struct {
	JS       jetstream.JetStream
	Logger   *slog.Logger
	Metrics  *worker.Metrics
	Registry prometheus.Registerer
	// Env is the process environment; each service parses its own config from it, once.
	Env map[string]string
}

// Service is a running unit: a stage, a projection, the ingest scheduler.
type Service interface {
	// Run works until ctx is cancelled, then finishes in-flight work and returns.
	Run(ctx context.Context) error
}

// Spec registers a service.
type Spec struct {
	// Name is the subcommand: `tgflow <Name>`.
	Name string
	Doc  string
	// Consumers are the durable consumers the service reads (topology names).
	Consumers []string
	// Config returns a pointer to a zero value of the config struct New loads: `tgflow
	// config` documents its variables, and the wiring loads and validates it before it
	// connects or serves anything, so a bad value is reported first.
	Config func() any
	New    func(ctx context.Context, d Deps) (Service, error)
}

// Registry is the ordered list of services this binary implements.
type Registry []Spec

// Lookup finds a service by name.
func (r Registry) Lookup(name string) (Spec, bool) {
	for _, s := range r {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Consumers lists every consumer read by the registry's services.
func (r Registry) Consumers() []string {
	out := []string{}
	for _, s := range r {
		out = append(out, s.Consumers...)
	}
	return out
}
