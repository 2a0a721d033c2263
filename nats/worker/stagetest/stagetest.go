// Package stagetest is the contract suite every stage passes, the way projectiontest serves
// read models: a stage's outputs validate; their types are the ones the topology assigns to
// the stage, under its producer name, continuing the input's trace; the same input twice
// yields the same output ids (so the log's dedup drops a redelivery's copy); a malformed
// input is a permanent failure (dead-lettered at once, not retried); and a handler never
// sees NATS. The suite runs the stage's router through worker.Pipeline, the same code the
// runtime runs, without a server.
package stagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

// Harness adapts one stage to the suite.
type Harness struct {
	// Consumer is the stage's topology consumer: its producer and output types come from it.
	Consumer string
	// Router returns the stage's router as its service builds it (with its middleware and
	// fake providers); it is called once per check.
	Router func(t *testing.T) *worker.Router
	// Inputs are well-formed inputs, at least one for every type the router handles; they
	// must succeed, and together produce at least one output.
	Inputs []events.Event
	// Malformed are decodable inputs the stage must reject as permanent (optional).
	Malformed []events.Event
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, err := range c.fn(t, h) {
				t.Error(err)
			}
		})
	}
}

type check struct {
	name string
	fn   func(t *testing.T, h Harness) []error
}

var checks = []check{
	{"every handled type has an input", everyTypeHasAnInput},
	{"outputs validate", outputsValidate},
	{"outputs belong to the stage", outputsBelongToTheStage},
	{"the same input twice yields the same output ids", deterministicIDs},
	{"a malformed input is permanent", malformedIsPermanent},
	{"a handler never sees NATS", handlerNeverSeesNATS},
}

func pipeline(t *testing.T, h Harness, r *worker.Router) *worker.Pipeline {
	t.Helper()
	p, err := worker.NewPipeline(h.Consumer, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run handles every input and returns the outputs per input.
func run(t *testing.T, h Harness, r *worker.Router) ([][]events.Event, []error) {
	t.Helper()
	p := pipeline(t, h, r)
	var outs [][]events.Event
	var errs []error
	for _, in := range h.Inputs {
		out, err := p.Handle(context.Background(), in)
		if err != nil {
			errs = append(errs, fmt.Errorf("input %s %s failed: %w", in.Type, in.Subject, err))
		}
		outs = append(outs, out)
	}
	return outs, errs
}

func everyTypeHasAnInput(t *testing.T, h Harness) []error {
	var errs []error
	for _, typ := range h.Router(t).Types() {
		if !slices.ContainsFunc(h.Inputs, func(e events.Event) bool { return e.Type == typ }) {
			errs = append(errs, fmt.Errorf("the router handles %s, but no input has that type", typ))
		}
	}
	return errs
}

func outputsValidate(t *testing.T, h Harness) []error {
	outs, errs := run(t, h, h.Router(t))
	n := 0
	for _, out := range outs {
		for _, o := range out {
			n++
			hdr, body, err := events.Encode(o)
			if err != nil {
				errs = append(errs, fmt.Errorf("output %s %s: %w", o.Type, o.ID, err))
				continue
			}
			back, err := events.Decode(hdr, body)
			if err != nil || back.ID != o.ID || back.Type != o.Type {
				errs = append(errs, fmt.Errorf("output %s %s does not decode back: %v", o.Type, o.ID, err))
			}
			if _, err := o.NATSSubject(events.Default); err != nil {
				errs = append(errs, fmt.Errorf("output %s %s has no subject: %w", o.Type, o.ID, err))
			}
		}
	}
	if n == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no input produced an output: the suite shows nothing"))
	}
	return errs
}

// outputsBelongToTheStage checks the outputs against the topology directly (not through
// the runtime's own check, which Pipeline applies as well).
func outputsBelongToTheStage(t *testing.T, h Harness) []error {
	c, ok := topology.LookupConsumer(h.Consumer)
	if !ok {
		return []error{fmt.Errorf("consumer %q is not in the topology", h.Consumer)}
	}
	var errs []error
	r := h.Router(t)
	// Bypass the runtime's producer check: call the handlers with the stage's producer in
	// ctx and look at what they return.
	var raw [][]events.Event
	r.Use(func(next worker.HandlerFunc) worker.HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			out, err := next(ctx, in)
			raw = append(raw, out)
			return out, err
		}
	})
	p := pipeline(t, h, r)
	for _, in := range h.Inputs {
		// An error here is reported by "outputs validate"; the outputs are what matter.
		_, _ = p.Handle(context.Background(), in)
		if len(raw) == 0 {
			continue
		}
		for _, o := range raw[len(raw)-1] {
			s, ok := events.Lookup(o.Type)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("output type %s is not registered", o.Type))
			case s.Producer != c.Producer:
				errs = append(errs, fmt.Errorf("output %s: the topology assigns it to %s, not to %s", o.Type, s.Producer, c.Producer))
			case o.Producer() != c.Producer:
				errs = append(errs, fmt.Errorf("output %s claims producer %q, the stage is %q", o.Type, o.Producer(), c.Producer))
			}
			if tin, tout := events.TraceID(in.TraceParent), events.TraceID(o.TraceParent); tin != "" && tin != tout {
				errs = append(errs, fmt.Errorf("output %s does not continue the input's trace %s (has %q)", o.Type, tin, tout))
			}
		}
	}
	return errs
}

func ids(outs [][]events.Event) [][]string {
	var all [][]string
	for _, out := range outs {
		var one []string
		for _, o := range out {
			one = append(one, o.ID)
		}
		all = append(all, one)
	}
	return all
}

// deterministicIDs handles every input twice, the second time with a fresh router (a
// restarted process), and compares the output ids.
func deterministicIDs(t *testing.T, h Harness) []error {
	first, errs := run(t, h, h.Router(t))
	again, _ := run(t, h, h.Router(t))
	a, b := ids(first), ids(again)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			errs = append(errs, fmt.Errorf("input %s %s: output ids %v, then %v: a redelivery would publish a second copy", h.Inputs[i].Type, h.Inputs[i].Subject, a[i], b[i]))
		}
	}
	return errs
}

func permanent(err error) bool {
	c := worker.Classify(err)
	return err != nil && (c == worker.ClassPermanent || c == worker.ClassDecode)
}

// malformedIsPermanent sends, for every handled type, a body that is not JSON and a body
// whose payload is empty, through the runtime's decode and the handler, plus the
// harness's own malformed inputs through the handler: each must fail permanently.
func malformedIsPermanent(t *testing.T, h Harness) []error {
	var errs []error
	r := h.Router(t)
	p := pipeline(t, h, r)
	process := func(hdr events.Header, body []byte) error {
		ev, err := p.Decode(hdr, body)
		if err != nil {
			return err
		}
		_, err = p.Handle(context.Background(), ev)
		return err
	}
	for _, typ := range r.Types() {
		i := slices.IndexFunc(h.Inputs, func(e events.Event) bool { return e.Type == typ })
		if i < 0 {
			continue // reported by "every handled type has an input"
		}
		hdr, _, err := events.Encode(h.Inputs[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("input %s does not encode: %w", typ, err))
			continue
		}
		for _, body := range []string{"{not json", "{}"} {
			if err := process(hdr, []byte(body)); !permanent(err) {
				errs = append(errs, fmt.Errorf("%s with body %q: %v (class %s), want a permanent failure", typ, body, err, worker.Classify(err)))
			}
		}
	}
	for _, in := range h.Malformed {
		if _, err := p.Handle(context.Background(), in); !permanent(err) {
			errs = append(errs, fmt.Errorf("malformed %s %s: %v (class %s), want a permanent failure", in.Type, in.Subject, err, worker.Classify(err)))
		}
	}
	return errs
}

// handlerNeverSeesNATS looks, in the context every handler call gets, for any value of a
// NATS type (a connection, a JetStream handle, a message).
func handlerNeverSeesNATS(t *testing.T, h Harness) []error {
	var errs []error
	r := h.Router(t)
	r.Use(func(next worker.HandlerFunc) worker.HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			if typ := natsValue(reflect.ValueOf(ctx), 0); typ != "" {
				errs = append(errs, fmt.Errorf("the handler of %s gets a context holding a %s", in.Type, typ))
			}
			if typ := natsValue(reflect.ValueOf(in.Data), 0); typ != "" {
				errs = append(errs, fmt.Errorf("the payload of %s holds a %s", in.Type, typ))
			}
			return next(ctx, in)
		}
	})
	p := pipeline(t, h, r)
	for _, in := range h.Inputs {
		// Failures are reported by the other checks.
		_, _ = p.Handle(context.Background(), in)
	}
	return errs
}

// natsValue walks v (pointers, interfaces, struct fields — exported or not) and returns the
// first type it finds from a nats-io package, or "".
func natsValue(v reflect.Value, depth int) string {
	if !v.IsValid() || depth > 40 {
		return ""
	}
	if strings.Contains(v.Type().PkgPath(), "github.com/nats-io/") {
		return v.Type().String()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return natsValue(v.Elem(), depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			if typ := natsValue(v.Field(i), depth+1); typ != "" {
				return typ
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range min(v.Len(), 16) {
			if typ := natsValue(v.Index(i), depth+1); typ != "" {
				return typ
			}
		}
	}
	return ""
}
