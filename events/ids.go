package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ChannelID is a Telegram channel id in its one canonical form: the bare positive id
// (1234567890), never the Bot-API form (-1001234567890). The old system compared the two
// forms against each other and lost channels; ParseChannelID accepts both and returns this.
type ChannelID int64

// ErrChannelID is returned for a channel id that is neither a bare positive id nor a -100… id.
var ErrChannelID = errors.New("invalid channel id")

// ParseChannelID accepts "1234567890" and the Bot-API form "-1001234567890".
func ParseChannelID(s string) (ChannelID, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "-100"); ok {
		s = rest
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %q", ErrChannelID, s)
	}
	return ChannelID(n), nil
}

// String is the bare decimal id, as used in subjects and post keys.
func (c ChannelID) String() string { return strconv.FormatInt(int64(c), 10) }

// Valid reports whether c is a bare positive id.
func (c ChannelID) Valid() bool { return c > 0 }

// PostKey is "<channel_id>/<message_id>", the CloudEvents subject of every post fact.
func PostKey(ch ChannelID, msg int64) string {
	return ch.String() + "/" + strconv.FormatInt(msg, 10)
}

// ParsePostKey is the inverse of PostKey.
func ParsePostKey(key string) (ChannelID, int64, error) {
	chs, msgs, ok := strings.Cut(key, "/")
	if !ok {
		return 0, 0, fmt.Errorf("post key %q: want <channel_id>/<message_id>", key)
	}
	ch, err := ParseChannelID(chs)
	if err != nil {
		return 0, 0, fmt.Errorf("post key %q: %w", key, err)
	}
	msg, err := strconv.ParseInt(msgs, 10, 64)
	if err != nil || msg <= 0 {
		return 0, 0, fmt.Errorf("post key %q: invalid message id", key)
	}
	return ch, msg, nil
}

// NewID derives a deterministic event id from its parts: the same parts always give the same
// id, so a retried publish is dropped by Nats-Msg-Id dedup and a redelivered input produces
// the same output id. 128 bits of SHA-256, hex.
func NewID(parts ...string) string {
	sum := hash(parts...)
	return hex.EncodeToString(sum[:16])
}

func hash(parts ...string) [sha256.Size]byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	buf := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			buf = append(buf, 0x1f)
		}
		buf = append(buf, p...)
	}
	return sha256.Sum256(buf)
}
