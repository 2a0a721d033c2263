package telegram

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgflow/tgflow/services/ingest/session"
)

// Class says what ingest does about a failed Telegram call.
type Class string

// Failure classes.
const (
	// ClassTransient: network trouble, timeouts, server errors. The channel is retried
	// with exponential backoff; the others go on.
	ClassTransient Class = "transient"
	// ClassAuth: the session is unusable (revoked, deactivated, never logged in, wrong
	// session key). Ingest stops with one clear error instead of retrying every channel.
	ClassAuth Class = "auth"
	// ClassChannel: this channel cannot be read (private, no such username, invalid).
	// Ingest records a channels.failed fact and looks again rarely.
	ClassChannel Class = "channel"
	// ClassFlood: Telegram asked to wait longer than the flood-wait middleware may sleep.
	// The channel is retried after the wait; the others go on.
	ClassFlood Class = "flood"
	// ClassCanceled: the context ended (shutdown, lost lease): not a failure of the channel.
	ClassCanceled Class = "canceled"
)

// Codes that make a session unusable: every further call would fail the same way.
var authCodes = []string{
	"AUTH_KEY_UNREGISTERED", "AUTH_KEY_INVALID", "AUTH_KEY_PERM_EMPTY", "AUTH_KEY_DUPLICATED",
	"SESSION_REVOKED", "SESSION_EXPIRED", "SESSION_PASSWORD_NEEDED",
	"USER_DEACTIVATED", "USER_DEACTIVATED_BAN", "USER_BANNED_IN_CHANNEL_FOREVER",
}

// Codes that concern one channel only.
var channelCodes = []string{
	CodeChannelPrivate, "CHANNEL_INVALID", "CHANNEL_PUBLIC_GROUP_NA", "CHAT_FORBIDDEN",
	"USERNAME_NOT_OCCUPIED", "USERNAME_INVALID", "USERNAME_NOT_MODIFIED",
	CodeNotAChannel,
}

// Codes ingest itself gives to channel failures.
const (
	CodeChannelPrivate = "CHANNEL_PRIVATE"
	// CodeNotAChannel: the username belongs to a user, a bot or a basic group.
	CodeNotAChannel = "NOT_A_CHANNEL"
	// CodeFloodWait is the code of a FloodWaitError.
	CodeFloodWait = "FLOOD_WAIT"
)

var (
	// ErrNotAuthorized is returned by Run when the session has no logged-in account.
	ErrNotAuthorized = errors.New("telegram: the session is not logged in: run `tgflow login` first")
)

// FloodWaitError is a FLOOD_WAIT longer than the middleware's maximum wait. It does not
// unwrap to the RPC error on purpose: gotd's downloader sleeps through any FLOOD_WAIT it
// recognises, however long, and this one must reach the scheduler instead.
type FloodWaitError struct {
	Wait time.Duration
	// Message is the RPC error text, e.g. "FLOOD_WAIT_3600".
	Message string
}

func (e *FloodWaitError) Error() string {
	return fmt.Sprintf("telegram: %s: must wait %s, more than the flood-wait limit", e.Message, e.Wait)
}

// ChannelError is a channel failure that ingest detects itself (a username that names a
// user, a forbidden channel in a resolve result).
type ChannelError struct {
	Code   string
	Reason string
}

func (e *ChannelError) Error() string { return "telegram: " + e.Code + ": " + e.Reason }

// Failure is a classified error.
type Failure struct {
	Class Class
	// Code is the RPC error type (CHANNEL_PRIVATE, FLOOD_WAIT, …) or "" when there is none.
	Code string
	// Wait is how long Telegram asked to wait (ClassFlood).
	Wait time.Duration
}

// Classify says how err is handled. A nil error has no class.
func Classify(err error) Failure {
	if err == nil {
		return Failure{}
	}
	var fw *FloodWaitError
	if errors.As(err, &fw) {
		return Failure{Class: ClassFlood, Code: CodeFloodWait, Wait: fw.Wait}
	}
	if d, ok := tgerr.AsFloodWait(err); ok {
		return Failure{Class: ClassFlood, Code: CodeFloodWait, Wait: d}
	}
	var ce *ChannelError
	if errors.As(err, &ce) {
		return Failure{Class: ClassChannel, Code: ce.Code}
	}
	if errors.Is(err, ErrNotAuthorized) {
		return Failure{Class: ClassAuth, Code: "NOT_AUTHORIZED"}
	}
	if errors.Is(err, context.Canceled) {
		return Failure{Class: ClassCanceled}
	}
	if rpc, ok := tgerr.As(err); ok {
		switch {
		case rpc.IsOneOf(authCodes...), rpc.Code == 401:
			return Failure{Class: ClassAuth, Code: rpc.Type}
		case rpc.IsOneOf(channelCodes...):
			return Failure{Class: ClassChannel, Code: rpc.Type}
		}
		return Failure{Class: ClassTransient, Code: rpc.Type}
	}
	if errors.Is(err, session.ErrWrongKey) || errors.Is(err, session.ErrFormat) {
		return Failure{Class: ClassAuth, Code: "SESSION_KEY"}
	}
	return Failure{Class: ClassTransient}
}
