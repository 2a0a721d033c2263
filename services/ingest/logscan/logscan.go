// Package logscan reads the facts the log holds on one subject since a time, with batched
// direct gets (read-only; no consumer is created). The ingest paths use it after an
// interruption: a fact published before the crash but not yet recorded (cursor, album
// progress, import ledger) is found on the log instead of being published a second time —
// the log's duplicate window cannot be relied on, as a restart may come hours later.
package logscan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
)

// batchSize is how many messages one direct get request returns at most.
const batchSize = 500

// replyTimeout bounds the wait for each reply of the server.
const replyTimeout = 30 * time.Second

// numPendingHeader is the end-of-batch header counting the matching messages left.
const numPendingHeader = "Nats-Num-Pending"

// ErrScan wraps every failure to read the log.
var ErrScan = errors.New("logscan: reading the log")

// getRequest is the server's direct get request (JSApiMsgGetRequest), batched.
type getRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj"`
	Batch     int        `json:"batch"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// Scan calls fn with every message of the log on subject (a literal subject or a
// wildcard) stored at or after since, oldest first; a zero since scans from the start.
//
// Callers take since from a KV entry's time: both are stamped by the server that stores
// them, one clock with tgflow's single-replica streams. (Were the KV bucket and the log
// led by different servers of a cluster, their clock skew would have to be subtracted.)
func Scan(ctx context.Context, js jetstream.JetStream, subject string, since time.Time, fn func(*nats.Msg) error) error {
	nc := js.Conn()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrScan, err)
	}
	// An inbox left subscribed after a failed unsubscribe ends with the connection;
	// nothing is read from it any more.
	defer func() { _ = sub.Unsubscribe() }()
	req := getRequest{NextFor: subject, Batch: batchSize, Seq: 1}
	if !since.IsZero() {
		t := since.UTC()
		req.Seq, req.StartTime = 0, &t
	}
	apiSubject := "$JS.API.DIRECT.GET." + topology.LogStream
	for {
		body, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrScan, err)
		}
		if err := nc.PublishRequest(apiSubject, inbox, body); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrScan, subject, err)
		}
		last, more, err := readBatch(ctx, sub, subject, fn)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		req.Seq, req.StartTime = last+1, nil
	}
}

// readBatch reads the replies of one batched request: messages, then an end-of-batch
// status saying how many more match. more is false when the scan is complete.
func readBatch(ctx context.Context, sub *nats.Subscription, subject string, fn func(*nats.Msg) error) (last uint64, more bool, err error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, replyTimeout)
		m, err := sub.NextMsgWithContext(rctx)
		cancel()
		if err != nil {
			return 0, false, fmt.Errorf("%w: %s: %w", ErrScan, subject, err)
		}
		if len(m.Data) == 0 && m.Header.Get("Status") != "" {
			switch status := m.Header.Get("Status"); status {
			case "404": // nothing (more) on the subject
				return last, false, nil
			case "204": // end of batch
				pending, err := strconv.ParseUint(m.Header.Get(numPendingHeader), 10, 64)
				if err != nil {
					return 0, false, fmt.Errorf("%w: %s: end of batch without a pending count: %w", ErrScan, subject, err)
				}
				if pending > 0 && last == 0 {
					return 0, false, fmt.Errorf("%w: %s: an empty batch with %d pending", ErrScan, subject, pending)
				}
				return last, pending > 0, nil
			default:
				return 0, false, fmt.Errorf("%w: %s: status %s %s", ErrScan, subject, status, m.Header.Get("Description"))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%w: %s: message without a sequence: %w", ErrScan, subject, err)
		}
		last = seq
		if err := fn(m); err != nil {
			return 0, false, err
		}
	}
}

// IDs returns the event id (the ce-id header, else the Nats-Msg-Id the publisher sets
// to it) of every fact on subject stored at or after since.
func IDs(ctx context.Context, js jetstream.JetStream, subject string, since time.Time) (map[string]bool, error) {
	ids := map[string]bool{}
	err := Scan(ctx, js, subject, since, func(m *nats.Msg) error {
		id := m.Header.Get(events.HeaderID)
		if id == "" {
			id = m.Header.Get(jetstream.MsgIDHeader)
		}
		if id != "" {
			ids[id] = true
		}
		return nil
	})
	return ids, err
}
