package tracing_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/tracing"
)

func TestEnabledByTheStandardVariables(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    bool
		wantErr error
	}{
		{"nothing set: off", map[string]string{}, false, nil},
		{"an OTLP endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, nil},
		{"a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, nil},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, nil},
		{"exporter none wins over an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false, nil},
		{"SDK disabled wins", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, nil},
		{"an exporter tgflow does not ship", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, tracing.ErrBadConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tracing.Enabled(tc.env)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Enabled = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSetup(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	ctx := context.Background()
	shutdown, err := tracing.Setup(ctx, map[string]string{}, "tagger")
	if err != nil || shutdown(ctx) != nil {
		t.Fatalf("off: %v", err)
	}
	if _, err := tracing.Setup(ctx, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, "tagger"); !errors.Is(err, tracing.ErrBadConfig) {
		t.Fatalf("bad protocol: %v", err)
	}
	for _, proto := range []string{"http/protobuf", "grpc"} {
		// Nothing listens there: spans would be dropped, but nothing is recorded before the
		// shutdown, which must return promptly.
		shutdown, err := tracing.Setup(ctx, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": proto}, "tagger")
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		_, span := tracing.Tracer().Start(ctx, "x")
		if !span.IsRecording() {
			t.Fatalf("%s: the tracer does not record after Setup", proto)
		}
		if err := shutdown(ctx); err != nil {
			t.Logf("%s shutdown: %v", proto, err)
		}
	}
}

// With tracing off, no fact's traceparent changes: the ids and trace ids stay those the
// events package derives.
func TestOffLeavesTraceParentsAlone(t *testing.T) {
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(noop.NewTracerProvider())
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	ev := events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1, MessageID: 1}, Date: t0, Text: "x"}})
	got, span := tracing.StartPublish(context.Background(), ev)
	span.End()
	if got.TraceParent != ev.TraceParent || tracing.TraceParent(span) != "" {
		t.Fatalf("traceparent %s → %s", ev.TraceParent, got.TraceParent)
	}
	_, hs := tracing.StartHandle(context.Background(), "tagger", ev)
	defer hs.End()
	if tracing.TraceParent(hs) != "" {
		t.Fatal("a no-op handler span must not carry a traceparent on")
	}
}
