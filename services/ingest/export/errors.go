package export

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrMalformed is wrapped by every *ParseError: the file is not a Telegram Desktop JSON
	// export this package can read. It is permanent; nothing was emitted.
	ErrMalformed = errors.New("malformed export")
	// ErrChanged is returned by Facts when the file is no longer the one Open validated.
	ErrChanged = errors.New("export changed since it was opened")
)

// ParseError locates a problem in an export file.
type ParseError struct {
	// Path is the JSON path of the chat or message, e.g. "chats.list[2].messages[517]";
	// empty for a problem at the top level.
	Path string
	// Chat is the index of the chat in its list (-1 when not in a chat of a list).
	Chat int
	// Message is the index of the message in its chat (-1 when not in a message).
	Message int
	// Offset is the byte offset in the file where the problem is: the first byte of the
	// offending value, or the offending byte of a syntax error.
	Offset int64
	// Reason says what is wrong, starting with the field when there is one.
	Reason string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("export: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "(byte %d): %s", e.Offset, e.Reason)
	return b.String()
}

func (e *ParseError) Unwrap() error { return ErrMalformed }

// fieldError is a problem inside one message, at a path relative to the message object
// (keys and array indexes); the walker turns it into a ParseError with the byte offset.
type fieldError struct {
	at     []any
	reason string
}

func (e *fieldError) Error() string { return e.reason }

func fieldErr(at []any, format string, args ...any) *fieldError {
	return &fieldError{at: at, reason: fmt.Sprintf(format, args...)}
}

// fieldPath renders ["text", 3, "href"] as "text[3].href".
func fieldPath(at []any) string {
	var b strings.Builder
	for _, p := range at {
		switch p := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}
