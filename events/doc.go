// Package events defines every fact tgflow writes to its log: the CloudEvents 1.0 envelope,
// one typed payload per versioned event type, the registry that maps a type to its Go
// struct, its NATS subject and the one stage that produces it, and the binary-mode codec
// that carries an event in NATS headers (ce-*) with a JSON body.
//
// Nothing here knows about NATS connections, stages or read models; other packages build on
// these types.
package events
