package events

import (
	"errors"
	"fmt"
	"time"
)

// Album and trend fact types.
const (
	TypeAlbumParsed    Type = "org.tgflow.album.parsed.v1"
	TypeAlbumAssembled Type = "org.tgflow.album.assembled.v1"
	TypeTrendDetected  Type = "org.tgflow.trend.detected.v1"
)

// AlbumItem is one message of an album.
type AlbumItem struct {
	MessageID   int64  `json:"message_id"`
	MediaKind   string `json:"media_kind,omitempty"`
	MediaSHA256 string `json:"media_sha256,omitempty"`
}

// AlbumParsed is emitted once every item of a grouped id is known.
type AlbumParsed struct {
	ChannelID ChannelID   `json:"channel_id" jsonschema:"minimum=1"`
	GroupedID int64       `json:"grouped_id"`
	Items     []AlbumItem `json:"items"`
	Caption   string      `json:"caption,omitempty"`
	PostedAt  time.Time   `json:"posted_at"`
	// Inferred is set when the grouping was recognised from an export's layout rather than
	// given by Telegram's grouped id.
	Inferred bool `json:"inferred,omitempty"`
}

func (*AlbumParsed) EventType() Type        { return TypeAlbumParsed }
func (p *AlbumParsed) SubjectToken() string { return p.ChannelID.String() }
func (p *AlbumParsed) Key() string          { return AlbumKey(p.ChannelID, p.GroupedID) }
func (p *AlbumParsed) Validate() error {
	return invalid(TypeAlbumParsed, validateAlbum(p.ChannelID, p.GroupedID, len(p.Items)))
}

// AlbumKey is "<channel_id>/album/<grouped_id>".
func AlbumKey(ch ChannelID, grouped int64) string {
	return ch.String() + "/album/" + itoa(grouped)
}

// Album assembly outcomes.
const (
	AlbumComplete = "complete"
	AlbumDeadline = "deadline"
)

// AlbumAssembled summarises an album when all items are analysed or its deadline passed.
type AlbumAssembled struct {
	ChannelID  ChannelID `json:"channel_id" jsonschema:"minimum=1"`
	GroupedID  int64     `json:"grouped_id"`
	MessageIDs []int64   `json:"message_ids"`
	Missing    []int64   `json:"missing,omitempty"`
	Outcome    string    `json:"outcome" jsonschema:"enum=complete,enum=deadline"`
	Summary    string    `json:"summary,omitempty"`
	Labels     []string  `json:"labels,omitempty"`
	At         time.Time `json:"at"`
	// Optional fields written by the albums stage.
	//
	// GroupedIDs are every grouped id the album was seen under: an export's synthetic
	// (negative) id and Telegram's real one name the same album.
	GroupedIDs []int64 `json:"grouped_ids,omitempty"`
	// Version is a digest of the item set the summary covers: one summary per version.
	Version string `json:"version,omitempty"`
	// ItemCount is the number of items (len(MessageIDs)).
	ItemCount int `json:"item_count,omitempty"`
	// CoverMessageID is the item shown for the album: the first analysed image.
	CoverMessageID int64     `json:"cover_message_id,omitempty"`
	Caption        string    `json:"caption,omitempty"`
	PostedAt       time.Time `json:"posted_at,omitzero"`
	// Descriptions are the items' image descriptions, in item order.
	Descriptions []string `json:"descriptions,omitempty"`
	// OCRText is the items' recognised text, in item order, bounded.
	OCRText string `json:"ocr_text,omitempty"`
}

func (*AlbumAssembled) EventType() Type        { return TypeAlbumAssembled }
func (p *AlbumAssembled) SubjectToken() string { return p.ChannelID.String() }
func (p *AlbumAssembled) Key() string          { return AlbumKey(p.ChannelID, p.GroupedID) }
func (p *AlbumAssembled) Validate() error {
	errs := validateAlbum(p.ChannelID, p.GroupedID, len(p.MessageIDs))
	if p.Outcome != AlbumComplete && p.Outcome != AlbumDeadline {
		errs = append(errs, fmt.Errorf("outcome %q is not complete or deadline", p.Outcome))
	}
	return invalid(TypeAlbumAssembled, errs)
}

func validateAlbum(ch ChannelID, grouped int64, items int) []error {
	var errs []error
	if !ch.Valid() {
		errs = append(errs, fmt.Errorf("channel_id %d is not a bare positive id", ch))
	}
	if grouped == 0 {
		errs = append(errs, errors.New("grouped_id is zero"))
	}
	if items == 0 {
		errs = append(errs, errors.New("album has no items"))
	}
	return errs
}

// TrendDetected is a burst of one tag across channels within a sliding event-time window.
type TrendDetected struct {
	Tag         string      `json:"tag"`
	Window      string      `json:"window"`
	WindowStart time.Time   `json:"window_start"`
	WindowEnd   time.Time   `json:"window_end"`
	Count       int         `json:"count"`
	Channels    []ChannelID `json:"channels"`
	Baseline    float64     `json:"baseline"`
	Score       float64     `json:"score"`
	Posts       []string    `json:"posts,omitempty"`
	// Optional fields written by the trends stage.
	//
	// Expected is the count the baseline predicts for the window.
	Expected float64 `json:"expected,omitempty"`
	// Method names the burst score's formula (see services/trends).
	Method string `json:"method,omitempty"`
}

func (*TrendDetected) EventType() Type        { return TypeTrendDetected }
func (p *TrendDetected) SubjectToken() string { return p.Window }
func (p *TrendDetected) Key() string {
	return "trend/" + p.Window + "/" + p.Tag + "/" + itoa(p.WindowEnd.Unix())
}
func (p *TrendDetected) Validate() error {
	var errs []error
	if p.Tag == "" {
		errs = append(errs, errors.New("tag is empty"))
	}
	if _, err := time.ParseDuration(p.Window); err != nil {
		errs = append(errs, fmt.Errorf("window %q is not a duration", p.Window))
	}
	if !p.WindowEnd.After(p.WindowStart) {
		errs = append(errs, errors.New("window_end is not after window_start"))
	}
	if p.Count <= 0 {
		errs = append(errs, errors.New("count must be positive"))
	}
	return invalid(TypeTrendDetected, errs)
}
