package worker

import (
	"errors"
	"fmt"

	"github.com/tgflow/tgflow/events"
)

// ErrPermanent marks a failure that retrying cannot fix (a bad payload, a rejected input):
// the message goes to the DLQ at once. Every other handler error is transient and is retried
// with a growing delay until the consumer's MaxDeliver, then dead-lettered.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err as a permanent failure.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// Class is how a failure is handled.
type Class string

// Failure classes (also the values of the class metric label and the DLQ class header).
const (
	ClassTransient Class = "transient"
	ClassPermanent Class = "permanent"
	ClassDecode    Class = "decode"
	ClassExhausted Class = "exhausted"
	// ClassBackend is a projection whose backend failed (projections.ErrBackend): an outage.
	ClassBackend Class = "backend"
	// ClassBug is a projection that failed on anything else: a deterministic bug to alert on.
	ClassBug Class = "bug"
)

// Classify says how a stage handles err. Everything not marked permanent or undecodable is
// transient, including ErrTimeout, ErrRateLimited, ErrCircuitOpen and ErrPanic.
func Classify(err error) Class {
	var de *events.DecodeError
	switch {
	case errors.As(err, &de):
		return ClassDecode
	case errors.Is(err, ErrPermanent), errors.Is(err, events.ErrInvalid), errors.Is(err, events.ErrUnknownType):
		return ClassPermanent
	}
	return ClassTransient
}
