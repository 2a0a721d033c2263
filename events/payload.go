package events

import (
	"errors"
	"fmt"
	"strconv"
)

// Payload is the typed body of one event type. Every payload struct in this package
// implements it; the registry maps its EventType to a subject and a producer.
type Payload interface {
	// EventType is the versioned CloudEvents type, e.g. "org.tgflow.post.tagged.v1".
	EventType() Type
	// SubjectToken is the last token of the NATS subject: the channel id for channel and
	// post facts.
	SubjectToken() string
	// Key is the CloudEvents subject: the post key "<channel_id>/<message_id>" for post facts.
	Key() string
	// Validate reports every missing or invalid required field.
	Validate() error
}

// Type is a versioned, reverse-DNS CloudEvents type.
type Type string

// ErrInvalid wraps every payload validation failure.
var ErrInvalid = errors.New("invalid payload")

// PostRef names one Telegram post.
type PostRef struct {
	ChannelID ChannelID `json:"channel_id" jsonschema:"minimum=1"`
	MessageID int64     `json:"message_id" jsonschema:"minimum=1"`
}

// Key is the post key.
func (r PostRef) Key() string { return PostKey(r.ChannelID, r.MessageID) }

// SubjectToken is the channel id.
func (r PostRef) SubjectToken() string { return r.ChannelID.String() }

func (r PostRef) validate() []error {
	var errs []error
	if !r.ChannelID.Valid() {
		errs = append(errs, fmt.Errorf("channel_id %d is not a bare positive id", r.ChannelID))
	}
	if r.MessageID <= 0 {
		errs = append(errs, fmt.Errorf("message_id %d must be positive", r.MessageID))
	}
	return errs
}

// Rev says what a derived fact was computed from. Version is the post version (its Telegram
// edit date as Unix seconds, 0 when never edited); Revision counts re-derivations of the same
// version (0 from text, 1 after vision results arrived). Read models keep the newest Rev and
// ignore stale ones.
type Rev struct {
	Version  int64 `json:"version" jsonschema:"minimum=0"`
	Revision int   `json:"revision,omitempty" jsonschema:"minimum=0"`
}

// Compare orders revs: -1 when r is older than o, 0 when equal, 1 when newer.
func (r Rev) Compare(o Rev) int {
	switch {
	case r.Version < o.Version:
		return -1
	case r.Version > o.Version:
		return 1
	case r.Revision < o.Revision:
		return -1
	case r.Revision > o.Revision:
		return 1
	}
	return 0
}

func (r Rev) validate() []error {
	var errs []error
	if r.Version < 0 {
		errs = append(errs, fmt.Errorf("version %d is negative", r.Version))
	}
	if r.Revision < 0 {
		errs = append(errs, fmt.Errorf("revision %d is negative", r.Revision))
	}
	return errs
}

func invalid(t Type, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalid, t, errors.Join(errs...))
}

func channelToken(id ChannelID, username string) string {
	if id.Valid() {
		return id.String()
	}
	return "@" + username
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
