package events

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Channel fact types.
const (
	TypeChannelSubscribed   Type = "org.tgflow.channel.subscribed.v1"
	TypeChannelUnsubscribed Type = "org.tgflow.channel.unsubscribed.v1"
	TypeChannelSynced       Type = "org.tgflow.channel.synced.v1"
	TypeChannelFailed       Type = "org.tgflow.channel.failed.v1"
)

var usernameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{3,31}$`)

// ValidUsername reports whether s is a syntactically valid public Telegram username
// (without the leading @).
func ValidUsername(s string) bool { return usernameRE.MatchString(s) }

// Backfill bounds the history read for a newly subscribed channel. Zero fields mean the
// ingest defaults.
type Backfill struct {
	Messages int `json:"messages,omitempty" jsonschema:"minimum=0"`
	Days     int `json:"days,omitempty" jsonschema:"minimum=0"`
}

// ChannelSubscribed is the command-as-fact that starts following a channel. Either the
// channel id or the username is known; ingest resolves the username once and caches it.
type ChannelSubscribed struct {
	ChannelID ChannelID `json:"channel_id,omitempty" jsonschema:"minimum=0"`
	Username  string    `json:"username,omitempty"`
	Backfill  Backfill  `json:"backfill,omitzero"`
	At        time.Time `json:"at"`
}

func (*ChannelSubscribed) EventType() Type        { return TypeChannelSubscribed }
func (p *ChannelSubscribed) SubjectToken() string { return channelToken(p.ChannelID, p.Username) }
func (p *ChannelSubscribed) Key() string          { return "channel/" + p.SubjectToken() }
func (p *ChannelSubscribed) Validate() error {
	return invalid(TypeChannelSubscribed, validateChannelIdent(p.ChannelID, p.Username))
}

// ChannelUnsubscribed stops following a channel; its facts stay in the log.
type ChannelUnsubscribed struct {
	ChannelID ChannelID `json:"channel_id,omitempty" jsonschema:"minimum=0"`
	Username  string    `json:"username,omitempty"`
	At        time.Time `json:"at"`
}

func (*ChannelUnsubscribed) EventType() Type        { return TypeChannelUnsubscribed }
func (p *ChannelUnsubscribed) SubjectToken() string { return channelToken(p.ChannelID, p.Username) }
func (p *ChannelUnsubscribed) Key() string          { return "channel/" + p.SubjectToken() }
func (p *ChannelUnsubscribed) Validate() error {
	return invalid(TypeChannelUnsubscribed, validateChannelIdent(p.ChannelID, p.Username))
}

// ChannelSynced ends every ingest run of one channel: the parse-success signal.
type ChannelSynced struct {
	ChannelID   ChannelID      `json:"channel_id" jsonschema:"minimum=1"`
	Username    string         `json:"username,omitempty"`
	Title       string         `json:"title,omitempty"`
	Backfill    bool           `json:"backfill,omitempty"`
	Cursor      int64          `json:"cursor" jsonschema:"minimum=0"`
	Fetched     int            `json:"fetched"`
	New         int            `json:"new"`
	Edited      int            `json:"edited"`
	Deleted     int            `json:"deleted"`
	MediaStored int            `json:"media_stored"`
	Skipped     map[string]int `json:"skipped,omitempty"`
	StartedAt   time.Time      `json:"started_at"`
	FinishedAt  time.Time      `json:"finished_at"`
}

func (*ChannelSynced) EventType() Type        { return TypeChannelSynced }
func (p *ChannelSynced) SubjectToken() string { return p.ChannelID.String() }
func (p *ChannelSynced) Key() string          { return "channel/" + p.ChannelID.String() }
func (p *ChannelSynced) Validate() error {
	var errs []error
	if !p.ChannelID.Valid() {
		errs = append(errs, fmt.Errorf("channel_id %d is not a bare positive id", p.ChannelID))
	}
	if p.FinishedAt.Before(p.StartedAt) {
		errs = append(errs, errors.New("finished_at is before started_at"))
	}
	return invalid(TypeChannelSynced, errs)
}

// ChannelFailed records why a channel could not be read (CHANNEL_PRIVATE,
// USERNAME_NOT_OCCUPIED, …) and when ingest will look again.
type ChannelFailed struct {
	ChannelID ChannelID `json:"channel_id,omitempty" jsonschema:"minimum=0"`
	Username  string    `json:"username,omitempty"`
	Code      string    `json:"code"`
	Reason    string    `json:"reason"`
	Permanent bool      `json:"permanent,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	At        time.Time `json:"at"`
}

func (*ChannelFailed) EventType() Type        { return TypeChannelFailed }
func (p *ChannelFailed) SubjectToken() string { return channelToken(p.ChannelID, p.Username) }
func (p *ChannelFailed) Key() string          { return "channel/" + p.SubjectToken() }
func (p *ChannelFailed) Validate() error {
	errs := validateChannelIdent(p.ChannelID, p.Username)
	if p.Code == "" {
		errs = append(errs, errors.New("code is empty"))
	}
	return invalid(TypeChannelFailed, errs)
}

func validateChannelIdent(id ChannelID, username string) []error {
	switch {
	case id < 0:
		return []error{fmt.Errorf("channel_id %d is not a bare positive id", id)}
	case id == 0 && username == "":
		return []error{errors.New("neither channel_id nor username is set")}
	case username != "" && !ValidUsername(username):
		return []error{fmt.Errorf("username %q is not a valid Telegram username", username)}
	}
	return nil
}
