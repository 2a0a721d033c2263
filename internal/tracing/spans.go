package tracing

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tgflow/tgflow/events"
)

// Span attribute keys.
const (
	AttrEventID   = attribute.Key("cloudevents.event_id")
	AttrEventType = attribute.Key("cloudevents.event_type")
	AttrSubject   = attribute.Key("cloudevents.event_subject")
	AttrConsumer  = attribute.Key("tgflow.consumer")
	AttrSeq       = attribute.Key("tgflow.log_seq")
	AttrFacts     = attribute.Key("tgflow.facts")
)

func eventAttrs(ev events.Event) []attribute.KeyValue {
	return []attribute.KeyValue{AttrEventID.String(ev.ID), AttrEventType.String(string(ev.Type)), AttrSubject.String(ev.Subject)}
}

// Fail records err on span (nil: nothing).
func Fail(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// StartHandle starts the span of a stage handling in, parented by in's traceparent.
func StartHandle(ctx context.Context, stage string, in events.Event) (context.Context, trace.Span) {
	ctx = WithRemote(ctx, in.TraceParent)
	return Tracer().Start(ctx, stage+" handle "+string(in.Type), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(append(eventAttrs(in), AttrConsumer.String(stage))...))
}

// StartPublish starts the span of publishing ev: a child of the span in ctx when there is
// a recording one, else of ev's own traceparent (a source fact). The returned event carries
// the publish span as its traceparent when tracing is on, and is ev unchanged otherwise.
func StartPublish(ctx context.Context, ev events.Event) (events.Event, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		ctx = WithRemote(ctx, ev.TraceParent)
	}
	_, span := Tracer().Start(ctx, "publish "+string(ev.Type), trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(eventAttrs(ev)...))
	if tp := TraceParent(span); tp != "" {
		ev.TraceParent = tp
	}
	return ev, span
}

// Fact is what a projection batch span needs of one fact.
type Fact struct {
	Seq         uint64
	Type        events.Type
	Subject     string
	TraceParent string
}

// Batch is the span of one projection batch and the spans of its facts.
type Batch struct {
	span  trace.Span
	facts []trace.Span
}

// StartBatch starts the span of a projection batch of n facts (fact(i) describes the i-th):
// the batch span starts a trace of its own, linked to every fact's span, and each fact gets
// a span parented by its traceparent, linked to the batch, so each post's trace reaches the
// read model. fact is not called when tracing is off.
func StartBatch(ctx context.Context, consumer string, n int, fact func(i int) Fact) (context.Context, *Batch) {
	ctx, span := Tracer().Start(ctx, consumer+" apply batch", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(AttrConsumer.String(consumer), AttrFacts.Int(n)))
	b := &Batch{span: span}
	if !span.IsRecording() {
		return ctx, b
	}
	batchLink := trace.Link{SpanContext: span.SpanContext()}
	for i := range n {
		f := fact(i)
		parent := Remote(f.TraceParent)
		if parent.IsValid() {
			span.AddLink(trace.Link{SpanContext: parent})
		}
		fctx := context.Background()
		if parent.IsValid() {
			fctx = trace.ContextWithRemoteSpanContext(fctx, parent)
		}
		_, fs := Tracer().Start(fctx, consumer+" apply "+string(f.Type), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(batchLink),
			trace.WithAttributes(AttrConsumer.String(consumer), AttrEventType.String(string(f.Type)), AttrSubject.String(f.Subject),
				AttrSeq.String(strconv.FormatUint(f.Seq, 10))))
		b.facts = append(b.facts, fs)
	}
	return ctx, b
}

// Attempt records a failed apply attempt on the batch span (the batch is retried).
func (b *Batch) Attempt(err error) {
	if err != nil {
		b.span.RecordError(err)
	}
}

// End ends the batch's spans; err is why the batch was given up (nil: applied).
func (b *Batch) End(err error) {
	for _, f := range b.facts {
		Fail(f, err)
		f.End()
	}
	Fail(b.span, err)
	b.span.End()
}
