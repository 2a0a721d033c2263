package export

import "github.com/tgflow/tgflow/events"

// Exports carry no grouped id, so albums are recognised by the way Telegram Desktop writes
// them (see README.md): a run of messages that
//
//   - each have exactly one photo or video,
//   - have consecutive message ids and the same date_unixtime,
//   - have the same forward origin (or none),
//   - and, after the first, no text (an album's caption is on its first item);
//
// of 2 to maxAlbumItems messages. The run's synthetic grouped id is the negated id of its
// first message: negative, so it never collides with a real (positive) Telegram grouped id,
// and stable across reads of the same export.
const maxAlbumItems = 10

// SyntheticGroupedID is the grouped id an inferred album gets from its first message id.
func SyntheticGroupedID(firstMessageID int64) int64 { return -firstMessageID }

// unit is what the grouper releases: one post, or the posts of one album.
type unit struct {
	msgs  []*message
	album bool
}

type grouper struct {
	run []*message
}

func albumable(m *message) bool {
	if len(m.media) != 1 {
		return false
	}
	k := m.media[0].m.Kind
	return k == events.MediaPhoto || k == events.MediaVideo
}

func (g *grouper) joins(m *message) bool {
	if len(g.run) == 0 || len(g.run) >= maxAlbumItems || !albumable(m) || m.text != "" {
		return false
	}
	first, last := g.run[0], g.run[len(g.run)-1]
	return m.id == last.id+1 && m.date.Equal(first.date) && m.fwdKey == first.fwdKey
}

// push adds the next post of the chat and calls emit for every unit it completes.
func (g *grouper) push(m *message, emit func(unit) error) error {
	if g.joins(m) {
		g.run = append(g.run, m)
		return nil
	}
	if err := g.flush(emit); err != nil {
		return err
	}
	if albumable(m) {
		g.run = append(g.run, m)
		return nil
	}
	return emit(unit{msgs: []*message{m}})
}

// flush releases the pending run at the end of a chat or when the next post does not join.
func (g *grouper) flush(emit func(unit) error) error {
	run := g.run
	g.run = nil
	switch len(run) {
	case 0:
		return nil
	case 1:
		return emit(unit{msgs: run})
	}
	return emit(unit{msgs: run, album: true})
}

// payloads makes the validated payloads of a unit for channel ch: its posts, then the
// album. A payload that fails validation is reported at its message.
func (u unit) payloads(ch events.ChannelID) ([]*events.PostParsed, *events.AlbumParsed, error) {
	var grouped int64
	if u.album {
		grouped = SyntheticGroupedID(u.msgs[0].id)
	}
	posts := make([]*events.PostParsed, 0, len(u.msgs))
	for _, m := range u.msgs {
		p := m.post(ch)
		p.GroupedID = grouped
		payload := &events.PostParsed{Post: p}
		if err := payload.Validate(); err != nil {
			return nil, nil, m.errorf("%v", err)
		}
		posts = append(posts, payload)
	}
	if !u.album {
		return posts, nil, nil
	}
	a := &events.AlbumParsed{
		ChannelID: ch,
		GroupedID: grouped,
		Caption:   u.msgs[0].text,
		PostedAt:  u.msgs[0].date,
		Inferred:  true,
	}
	for _, m := range u.msgs {
		md := m.media[0].m
		a.Items = append(a.Items, events.AlbumItem{MessageID: m.id, MediaKind: md.Kind, MediaSHA256: md.SHA256})
	}
	if err := a.Validate(); err != nil {
		return nil, nil, u.msgs[0].errorf("%v", err)
	}
	return posts, a, nil
}
