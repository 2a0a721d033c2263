package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
)

// DLQ headers added to the original message's headers.
const (
	HeaderDLQConsumer   = "Tgflow-Dlq-Consumer"
	HeaderDLQClass      = "Tgflow-Dlq-Class"
	HeaderDLQReason     = "Tgflow-Dlq-Reason"
	HeaderDLQDeliveries = "Tgflow-Dlq-Deliveries"
	HeaderDLQSubject    = "Tgflow-Dlq-Subject"
	HeaderDLQStreamSeq  = "Tgflow-Dlq-Stream-Seq"
	HeaderDLQTime       = "Tgflow-Dlq-Time"
	HeaderDLQMsgID      = "Tgflow-Dlq-Msg-Id"
)

// DeadLetter is one DLQ entry: the original message and why it died.
type DeadLetter struct {
	DLQSeq     uint64
	Consumer   string
	Class      Class
	Reason     string
	Deliveries uint64
	Subject    string
	StreamSeq  uint64
	Time       time.Time
	Header     nats.Header
	Data       []byte
}

const maxReason = 1000

func deadLetterMsg(consumer string, class Class, reason string, msg jetstream.Msg) *nats.Msg {
	h := nats.Header{}
	for k, v := range msg.Headers() {
		h[k] = append([]string(nil), v...)
	}
	origID := h.Get(publish.MsgIDHeader)
	if origID != "" {
		h.Set(HeaderDLQMsgID, origID)
	}
	deliveries, seq := "unknown", "0"
	// The DLQ entry's own Msg-Id makes a repeated dead-lettering of one message (a failed
	// Term, a redelivery) store one entry.
	dlqID := ""
	if meta, err := msg.Metadata(); err == nil {
		deliveries, seq = strconv.FormatUint(meta.NumDelivered, 10), strconv.FormatUint(meta.Sequence.Stream, 10)
		dlqID = fmt.Sprintf("dlq:%s:%s", consumer, seq)
	} else {
		// Without a stream sequence, only the original id can identify the message; with
		// neither, the entry gets no id (two entries beat a lost one).
		reason += fmt.Sprintf(" (metadata: %v)", err)
		if origID != "" {
			dlqID = fmt.Sprintf("dlq:%s:id:%s", consumer, origID)
		}
	}
	reason = strings.Join(strings.Fields(reason), " ")
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "…"
	}
	h.Set(HeaderDLQConsumer, consumer)
	h.Set(HeaderDLQClass, string(class))
	h.Set(HeaderDLQReason, reason)
	h.Set(HeaderDLQDeliveries, deliveries)
	h.Set(HeaderDLQSubject, msg.Subject())
	h.Set(HeaderDLQStreamSeq, seq)
	h.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	h.Del(publish.MsgIDHeader)
	if dlqID != "" {
		h.Set(publish.MsgIDHeader, dlqID)
	}
	return &nats.Msg{Subject: topology.DLQSubject(consumer), Header: h, Data: msg.Data()}
}

// ParseDeadLetter reads a DLQ stream message.
func ParseDeadLetter(m *jetstream.RawStreamMsg) DeadLetter {
	h := m.Header
	dl := DeadLetter{
		DLQSeq:   m.Sequence,
		Consumer: h.Get(HeaderDLQConsumer),
		Class:    Class(h.Get(HeaderDLQClass)),
		Reason:   h.Get(HeaderDLQReason),
		Subject:  h.Get(HeaderDLQSubject),
		Header:   h,
		Data:     m.Data,
	}
	dl.Deliveries = headerUint(h, HeaderDLQDeliveries)
	dl.StreamSeq = headerUint(h, HeaderDLQStreamSeq)
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime)); err == nil {
		dl.Time = t
	}
	return dl
}

// headerUint reads a numeric DLQ header; 0 means absent or unknown (a message whose
// metadata could not be read is dead-lettered with deliveries "unknown" and sequence 0).
func headerUint(h nats.Header, key string) uint64 {
	n, err := strconv.ParseUint(h.Get(key), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// ListDeadLetters returns the DLQ entries (optionally of one consumer), oldest first.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, consumer string, limit int) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return nil, fmt.Errorf("dlq stream: %w (run `tgflow nats apply`)", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return nil, nil
	}
	subject := topology.DLQPrefix + ".>"
	if consumer != "" {
		subject = topology.DLQSubject(consumer)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && (limit <= 0 || len(out) < limit); {
		// With a subject, GetMsg returns the first message at or after seq on that subject.
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, err
		}
		out = append(out, ParseDeadLetter(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// Replay sends a dead letter back to the one consumer that failed it, on
// replay.<consumer>.<original subject>, with its original headers, and removes it from the
// DLQ. Replaying the same entry twice within the duplicate window publishes once.
func Replay(ctx context.Context, js jetstream.JetStream, dlqSeq uint64) (DeadLetter, error) {
	s, err := js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dlq stream: %w", err)
	}
	raw, err := s.GetMsg(ctx, dlqSeq)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dlq entry %d: %w", dlqSeq, err)
	}
	dl := ParseDeadLetter(raw)
	if dl.Consumer == "" || dl.Subject == "" {
		return dl, fmt.Errorf("dlq entry %d has no consumer or subject header", dlqSeq)
	}
	h := nats.Header{}
	for k, v := range raw.Header {
		if strings.HasPrefix(k, "Tgflow-Dlq-") {
			continue
		}
		h[k] = v
	}
	// Replaying one log message twice publishes it once; without its log sequence, the
	// DLQ entry identifies it (sequence 0 would make every such replay one duplicate).
	id := fmt.Sprintf("replay:%s:%d", dl.Consumer, dl.StreamSeq)
	if dl.StreamSeq == 0 {
		id = fmt.Sprintf("replay:%s:dlq:%d", dl.Consumer, dlqSeq)
	}
	h.Set(publish.MsgIDHeader, id)
	original := dl.Subject
	// A message that was itself a replay goes back under its original subject.
	if rest, ok := strings.CutPrefix(original, topology.ReplaySubject(dl.Consumer, "")); ok {
		original = rest
	}
	msg := &nats.Msg{Subject: topology.ReplaySubject(dl.Consumer, original), Header: h, Data: raw.Data}
	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		return dl, err
	}
	f, err := pub.Send(msg)
	if err == nil {
		_, err = pub.Await(ctx, []jetstream.PubAckFuture{f})
	}
	if err != nil {
		return dl, fmt.Errorf("replay dlq entry %d: %w", dlqSeq, err)
	}
	if err := s.DeleteMsg(ctx, dlqSeq); err != nil {
		return dl, fmt.Errorf("replayed dlq entry %d but could not delete it: %w", dlqSeq, err)
	}
	return dl, nil
}
