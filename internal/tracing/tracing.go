// Package tracing is tgflow's OpenTelemetry tracing: one trace per post, from the fact
// ingest publishes to the read models' batches, carried between stages by the CloudEvents
// traceparent extension of every fact.
//
// Off by default. Setup turns it on when the standard OTEL_* variables ask for it
// (OTEL_TRACES_EXPORTER=otlp, or an OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT), and never when
// OTEL_SDK_DISABLED=true. Until then the global tracer provider is OpenTelemetry's no-op
// one: every span below is non-recording, and no fact's traceparent changes.
//
// The spans:
//   - publish: ingest and the importer publish a source fact inside a span parented by the
//     fact's own traceparent; the fact carries that span on the log (Inject).
//   - handle: the stage runtime handles each input inside a span parented by the input's
//     traceparent; the outputs carry the handler span, so the next stage's span is its child.
//   - apply: a projection batch is one span (linked to each fact's span); each fact in it
//     gets a span parented by the fact's traceparent and linked to the batch, so a post's
//     trace reaches the read model.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of every tgflow span.
const Name = "github.com/tgflow/tgflow"

// ErrBadConfig is returned for OTEL_* values tgflow cannot honour.
var ErrBadConfig = errors.New("tracing: bad OTEL_* configuration")

// Enabled reports whether env asks for tracing (see the package documentation).
func Enabled(env map[string]string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(env["OTEL_SDK_DISABLED"]), "true") {
		return false, nil
	}
	switch exp := strings.TrimSpace(env["OTEL_TRACES_EXPORTER"]); exp {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return env["OTEL_EXPORTER_OTLP_ENDPOINT"] != "" || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != "", nil
	default:
		return false, fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q: tgflow exports traces with otlp (or none)", ErrBadConfig, exp)
	}
}

// Setup installs the global tracer provider and the W3C propagator when env enables tracing,
// for the process running service. The OTLP exporter reads its standard variables
// (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT, _PROTOCOL: grpc or
// http/protobuf, the default); the SDK reads OTEL_TRACES_SAMPLER[_ARG], OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES. shutdown flushes what is buffered; it is a no-op when
// tracing is off.
func Setup(ctx context.Context, env map[string]string, service string) (shutdown func(context.Context) error, err error) {
	on, err := Enabled(env)
	if err != nil || !on {
		return func(context.Context) error { return nil }, err
	}
	proto := env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
	if proto == "" {
		proto = env["OTEL_EXPORTER_OTLP_PROTOCOL"]
	}
	var exp sdktrace.SpanExporter
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%w: OTEL_EXPORTER_OTLP_PROTOCOL=%q is not grpc or http/protobuf", ErrBadConfig, proto)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName("tgflow-"+service)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	if env["OTEL_SERVICE_NAME"] != "" {
		// The standard variable wins over tgflow's default name.
		if res, err = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName(env["OTEL_SERVICE_NAME"]))); err != nil {
			return nil, fmt.Errorf("tracing: resource: %w", err)
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, nil
}

// Tracer is tgflow's tracer from the global provider (a no-op until Setup enables tracing).
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(Name) }

var w3c = propagation.TraceContext{}

// Remote returns the span context a traceparent names (invalid for an empty or malformed one).
func Remote(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := w3c.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}

// WithRemote returns ctx whose parent span is the one traceparent names (ctx unchanged when
// it names none).
func WithRemote(ctx context.Context, traceparent string) context.Context {
	sc := Remote(traceparent)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// TraceParent is the W3C traceparent of span, or "" when the span is not recording (tracing
// off): a fact's traceparent changes only when a real span carries it on.
func TraceParent(span trace.Span) string {
	if !span.IsRecording() {
		return ""
	}
	c := propagation.MapCarrier{}
	w3c.Inject(trace.ContextWithSpan(context.Background(), span), c)
	return c["traceparent"]
}
