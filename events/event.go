package events

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Event is one fact: the CloudEvents context attributes tgflow uses and a typed payload.
type Event struct {
	// ID is deterministic: see New and Derive.
	ID string
	// Type is the payload's versioned type.
	Type Type
	// Source names the producer, "tgflow/<producer>".
	Source string
	// Subject is the CloudEvents subject: the post key for post facts.
	Subject string
	// Time is when the fact happened.
	Time time.Time
	// TraceParent is the W3C trace context carried from ingest to the read models.
	TraceParent string
	// PartitionKey is the channel id (or the payload's subject token where no channel applies).
	PartitionKey string
	Data         Payload
}

// New makes a source fact (one not derived from another event). Its id is derived from the
// producer, the type, the payload key and idParts (e.g. the post version), so the same fact
// observed twice gets the same id. A new trace starts here.
func New(producer string, p Payload, at time.Time, idParts ...string) Event {
	id := NewID(append([]string{producer, string(p.EventType()), p.Key()}, idParts...)...)
	return Event{
		ID:           id,
		Type:         p.EventType(),
		Source:       SourcePrefix + producer,
		Subject:      p.Key(),
		Time:         at.UTC(),
		TraceParent:  traceParent(NewID("trace", id), NewID("span", id)[:16]),
		PartitionKey: p.SubjectToken(),
		Data:         p,
	}
}

// Derive makes the fact a stage computes from in. The id is a hash of the input id, the
// producer, the output type and key, so a redelivered input produces the same output id and
// the log's Nats-Msg-Id dedup drops the copy. The trace continues in a child span.
func Derive(in Event, producer string, p Payload, at time.Time) Event {
	key := p.Key()
	sum := hash(in.ID, producer, string(p.EventType()), key)
	id := hex.EncodeToString(sum[:16])
	traceID := TraceID(in.TraceParent)
	if traceID == "" {
		traceID = NewID("trace", id)
	}
	return Event{
		ID:           id,
		Type:         p.EventType(),
		Source:       SourcePrefix + producer,
		Subject:      key,
		Time:         at.UTC(),
		TraceParent:  traceParent(traceID, hex.EncodeToString(sum[16:24])),
		PartitionKey: p.SubjectToken(),
		Data:         p,
	}
}

// PostEvent is the fact of one post version, with the id recipe every ingest path uses
// (the live Telegram reader and the export importer): producer ingest, the post key and the
// version (its edit date, 0 if never edited). Whichever path sees a version first, the log
// keeps one fact for it.
func PostEvent(p *PostParsed) Event {
	return New(ProducerIngest, p, p.Date, strconv.FormatInt(p.EditDate, 10))
}

// NATSSubject is the log subject of the event, from the registry.
func (e Event) NATSSubject(r *Registry) (string, error) {
	s, err := r.SpecOf(e.Data)
	if err != nil {
		return "", err
	}
	return s.Subject + "." + e.Data.SubjectToken(), nil
}

// Producer is the producer named by the source attribute.
func (e Event) Producer() string { return strings.TrimPrefix(e.Source, SourcePrefix) }

func traceParent(traceID, spanID string) string {
	return "00-" + traceID + "-" + spanID + "-01"
}

// TraceID extracts the 32-hex trace id from a W3C traceparent
// ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when it is not one.
func TraceID(traceparent string) string {
	const n = 2 + 1 + 32 + 1 + 16 + 1 + 2
	if len(traceparent) != n || traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-' {
		return ""
	}
	for i := 3; i < 52; i++ {
		if c := traceparent[i]; i != 35 && !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return traceparent[3:35]
}
