package events

import (
	"errors"
	"fmt"
)

var (
	// ErrUnknownType is returned when an event's type (or version) is not registered.
	ErrUnknownType = errors.New("unknown event type")
	// ErrMalformed is returned for a missing or invalid envelope attribute or an undecodable body.
	ErrMalformed = errors.New("malformed event")
)

// DecodeError says why a message could not be decoded into a typed event. It wraps
// ErrUnknownType, ErrMalformed or ErrInvalid; every DecodeError is permanent: retrying the
// same bytes cannot succeed, so the runtime sends the message to the DLQ.
type DecodeError struct {
	Type   Type
	Reason string
	Err    error
}

func (e *DecodeError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("decode event: %v: %s", e.Err, e.Reason)
	}
	return fmt.Sprintf("decode %s: %v: %s", e.Type, e.Err, e.Reason)
}

func (e *DecodeError) Unwrap() error { return e.Err }
