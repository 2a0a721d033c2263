package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gotd/td/telegram/downloader"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/media"
)

// MediaStore keeps media bytes, content-addressed (*media.Store, *media.Memory).
type MediaStore interface {
	Put(ctx context.Context, r io.Reader, meta media.Meta) (sha string, stored bool, err error)
}

// Reasons media bytes are not in the store (events.Media.Skipped), also the keys of
// channels.synced's skipped counts.
const (
	// SkipTooLarge: the file is over TGFLOW_MEDIA_MAX_BYTES (as the export importer says).
	SkipTooLarge = "too large"
	// SkipPolicyPrefix + kind: the media policy does not download this kind.
	SkipPolicyPrefix = "policy: "
	// SkipUnavailable: Telegram has no file for it (empty photo or document, the file
	// reference stayed expired after a refetch, the message was deleted meanwhile).
	SkipUnavailable = "unavailable"
	// SkipUnsupportedPrefix + media type: media that is not a file (poll, location…).
	SkipUnsupportedPrefix = "unsupported media: "
)

// DefaultMediaKinds is the media policy: the kinds whose bytes are downloaded.
var DefaultMediaKinds = []string{events.MediaPhoto, events.MediaVideo, events.MediaAnimation, events.MediaDocument}

// MediaResult is what StoreMedia did for one message.
type MediaResult struct {
	// Stored counts attachments whose bytes are in the store now (written by this call or
	// already there: the same photo in two channels is one object).
	Stored int
	// Written counts attachments whose bytes this call wrote for the first time.
	Written int
	// Skipped lists the reason of every attachment left without bytes.
	Skipped []string
}

// describeMedia is the events.Media of a message's media, or the name of a non-file media
// type that ingest does not keep.
func describeMedia(m tg.MessageMediaClass) (*events.Media, string) {
	switch x := m.(type) {
	case *tg.MessageMediaPhoto:
		photo, ok := x.Photo.(*tg.Photo)
		if !ok {
			return &events.Media{Kind: events.MediaPhoto, Skipped: SkipUnavailable}, ""
		}
		md := &events.Media{Kind: events.MediaPhoto, MIME: "image/jpeg"}
		if s, ok := largestPhotoSize(photo); ok {
			md.Width, md.Height, md.Size = s.w, s.h, s.size
		}
		return md, ""
	case *tg.MessageMediaDocument:
		doc, ok := x.Document.(*tg.Document)
		if !ok {
			return &events.Media{Kind: events.MediaDocument, Skipped: SkipUnavailable}, ""
		}
		return describeDocument(doc, x), ""
	case *tg.MessageMediaWebPage, *tg.MessageMediaEmpty, nil:
		return nil, ""
	}
	return nil, SkipUnsupportedPrefix + snake(strings.TrimPrefix(m.TypeName(), "messageMedia"))
}

func describeDocument(doc *tg.Document, x *tg.MessageMediaDocument) *events.Media {
	md := &events.Media{Kind: events.MediaDocument, MIME: doc.MimeType, Size: doc.Size}
	var video, animated, sticker, audio, voice bool
	for _, a := range doc.Attributes {
		switch at := a.(type) {
		case *tg.DocumentAttributeVideo:
			video = true
			md.Width, md.Height, md.DurationSec = at.W, at.H, at.Duration
		case *tg.DocumentAttributeAnimated:
			animated = true
		case *tg.DocumentAttributeSticker:
			sticker = true
		case *tg.DocumentAttributeAudio:
			audio, voice = true, at.Voice
			md.DurationSec = float64(at.Duration)
		case *tg.DocumentAttributeImageSize:
			if md.Width == 0 {
				md.Width, md.Height = at.W, at.H
			}
		case *tg.DocumentAttributeFilename:
			md.FileName = at.FileName
		}
	}
	switch {
	case sticker:
		md.Kind = events.MediaSticker
	case animated:
		md.Kind = events.MediaAnimation
	case video || x.Video || x.Round:
		md.Kind = events.MediaVideo
	case voice || x.Voice:
		md.Kind = events.MediaVoice
	case audio:
		md.Kind = events.MediaAudio
	}
	return md
}

type photoSize struct {
	typ  string
	w, h int
	size int64
}

// largestPhotoSize picks the biggest downloadable size of a photo.
func largestPhotoSize(p *tg.Photo) (photoSize, bool) {
	var best photoSize
	found := false
	for _, s := range p.Sizes {
		var c photoSize
		switch x := s.(type) {
		case *tg.PhotoSize:
			c = photoSize{typ: x.Type, w: x.W, h: x.H, size: int64(x.Size)}
		case *tg.PhotoSizeProgressive:
			c = photoSize{typ: x.Type, w: x.W, h: x.H}
			if n := len(x.Sizes); n > 0 {
				c.size = int64(x.Sizes[n-1])
			}
		default:
			continue // stripped, cached and path sizes are previews
		}
		if !found || c.w*c.h > best.w*best.h || (c.w*c.h == best.w*best.h && c.size > best.size) {
			best, found = c, true
		}
	}
	return best, found
}

// location is the file location of a message's media.
func location(m tg.MessageMediaClass) (tg.InputFileLocationClass, bool) {
	switch x := m.(type) {
	case *tg.MessageMediaPhoto:
		p, ok := x.Photo.(*tg.Photo)
		if !ok {
			return nil, false
		}
		s, ok := largestPhotoSize(p)
		if !ok {
			return nil, false
		}
		return &tg.InputPhotoFileLocation{ID: p.ID, AccessHash: p.AccessHash, FileReference: p.FileReference, ThumbSize: s.typ}, true
	case *tg.MessageMediaDocument:
		d, ok := x.Document.(*tg.Document)
		if !ok {
			return nil, false
		}
		return &tg.InputDocumentFileLocation{ID: d.ID, AccessHash: d.AccessHash, FileReference: d.FileReference}, true
	}
	return nil, false
}

// StoreMedia downloads the message's media through upload.getFile into the media store,
// following the media policy and the size cap, and records the result in m.Post.Media:
// the object key (= hex SHA-256) or the reason the bytes were skipped. An expired file
// reference is refreshed once with channels.getMessages. A returned error (network, flood
// wait, store down) leaves the post unpublishable for now: the caller retries later.
func (c *Client) StoreMedia(ctx context.Context, ch Channel, m *Message) (MediaResult, error) {
	var res MediaResult
	if m.Post == nil {
		return res, nil
	}
	if m.Unsupported != "" {
		res.Skipped = append(res.Skipped, m.Unsupported)
	}
	for i := range m.Post.Media {
		md := &m.Post.Media[i]
		switch {
		case md.SHA256 != "":
			res.Stored++
			continue
		case md.Skipped != "":
		case !c.kinds[md.Kind]:
			md.Skipped = SkipPolicyPrefix + md.Kind
		case md.Size > c.maxBytes:
			md.Skipped = SkipTooLarge
		}
		if md.Skipped != "" {
			res.Skipped = append(res.Skipped, md.Skipped)
			continue
		}
		sha, written, err := c.fetchMedia(ctx, ch, m, media.Meta{Name: md.FileName, MIME: md.MIME})
		switch {
		case errors.Is(err, media.ErrTooLarge):
			md.Skipped = SkipTooLarge
		case errors.Is(err, errUnavailable):
			md.Skipped = SkipUnavailable
		case err != nil:
			return res, fmt.Errorf("media of %s: %w", m.Post.Key(), err)
		}
		if md.Skipped != "" {
			res.Skipped = append(res.Skipped, md.Skipped)
			continue
		}
		md.SHA256, md.ObjectKey = sha, sha
		res.Stored++
		if written {
			res.Written++
		}
	}
	return res, nil
}

var errUnavailable = errors.New("telegram: file unavailable")

// fetchMedia downloads the media of m into the store; on FILE_REFERENCE_EXPIRED it
// refetches the message for a fresh reference and tries once more.
func (c *Client) fetchMedia(ctx context.Context, ch Channel, m *Message, meta media.Meta) (string, bool, error) {
	for attempt := 0; ; attempt++ {
		loc, ok := location(m.media)
		if !ok {
			return "", false, errUnavailable
		}
		sha, written, err := c.download(ctx, loc, meta)
		if err == nil || !tgerr.Is(err, "FILE_REFERENCE_EXPIRED", "FILE_REFERENCE_INVALID", "FILE_REFERENCE_EMPTY") {
			if tgerr.Is(err, "FILE_ID_INVALID", "LOCATION_INVALID", "MEDIA_EMPTY") {
				return "", false, errUnavailable
			}
			return sha, written, err
		}
		if attempt > 0 {
			return "", false, errUnavailable
		}
		fresh, err := c.Messages(ctx, ch, []int64{m.ID})
		if err != nil {
			return "", false, fmt.Errorf("refetch for a fresh file reference: %w", err)
		}
		if len(fresh) == 0 || fresh[0].Kind != KindPost {
			return "", false, errUnavailable
		}
		m.media = fresh[0].media
	}
}

// download streams one file from upload.getFile into the store. The store stops reading
// past its size cap; the download is then abandoned.
func (c *Client) download(ctx context.Context, loc tg.InputFileLocationClass, meta media.Meta) (string, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := downloader.NewDownloader().Download(c.api, loc).Stream(ctx, pw)
		_ = pw.CloseWithError(err)
		done <- err
	}()
	sha, written, err := c.media.Put(ctx, pr, meta)
	_ = pr.CloseWithError(errors.New("media store stopped reading"))
	cancel()
	dlErr := <-done
	if err != nil && dlErr != nil && !errors.Is(err, media.ErrTooLarge) {
		// The store failed because the download did: report the Telegram error.
		return "", false, dlErr
	}
	return sha, written, err
}
