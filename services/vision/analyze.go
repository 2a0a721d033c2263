package vision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"strings"
	"time"

	"golang.org/x/image/draw"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/openaicompat"
)

// Provider and Model name the local analysis in posts.vision.analyzed when no Describer is
// configured.
const (
	Provider = "local"
	Model    = "goimagehash-phash-dhash+tesseract-v1"
)

// Item reasons (events.VisionItem.Reason).
const (
	ReasonMissing  = "missing"
	ReasonTooLarge = "too_large"
	ReasonDecode   = "decode"
	ReasonLimit    = "limit"
)

// ErrNoImages is a post with nothing to analyse: the stage publishes nothing for it.
var ErrNoImages = errors.New("vision: the post has no images to analyse")

// Objects reads media by sha256: *media.Store (the JetStream object store) and
// *media.Memory satisfy it. A missing object is media.ErrNotFound.
type Objects interface {
	Get(ctx context.Context, sha string) (io.ReadCloser, media.Meta, error)
}

// Options are an Analyzer's dependencies.
type Options struct {
	// Objects is the media store (required).
	Objects Objects
	// OCR recognises text (required unless Config.DisableOCR); NewTesseract builds the
	// default.
	OCR OCR
	// Describer, when set, describes each image with a vision model.
	Describer Describer
	// Index, when set, links near-duplicates of earlier images.
	Index *Index
	// Now stamps AnalyzedAt (default time.Now).
	Now func() time.Time
}

// Analyzer analyses the images of posts.
type Analyzer struct {
	cfg  Config
	opts Options
}

// NewAnalyzer checks the configuration and the dependencies.
func NewAnalyzer(cfg Config, opts Options) (*Analyzer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Objects == nil {
		return nil, fmt.Errorf("%w: nil media store", ErrConfig)
	}
	if opts.OCR == nil && !cfg.DisableOCR {
		return nil, fmt.Errorf("%w: nil OCR (set DisableOCR to run without)", ErrConfig)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Analyzer{cfg: cfg, opts: opts}, nil
}

// imageMIMEs are the stored formats the decoders read.
var imageMIMEs = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// IsImage reports whether a media attachment is an image the policy analyses: a photo, or
// a document, sticker, video or animation whose stored object has an image MIME type (for
// a video: a thumbnail stored in its place). It must be in the store (have a sha256).
func IsImage(m events.Media) bool {
	if m.SHA256 == "" {
		return false
	}
	switch m.Kind {
	case events.MediaPhoto:
		return true
	case events.MediaDocument, events.MediaSticker, events.MediaVideo, events.MediaAnimation:
		mime, _, _ := strings.Cut(strings.ToLower(m.MIME), ";")
		return imageMIMEs[strings.TrimSpace(mime)]
	}
	return false
}

// Images are the distinct images of a post the policy analyses, in post order.
func Images(p *events.Post) []events.Media {
	var out []events.Media
	seen := map[string]bool{}
	for _, m := range p.Media {
		if IsImage(m) && !seen[m.SHA256] {
			seen[m.SHA256] = true
			out = append(out, m)
		}
	}
	return out
}

// Analyze analyses the images of one post version into one posts.vision.analyzed payload
// with an item per distinct image. ErrNoImages when there is none. Per-image problems
// (missing object, too large, undecodable, OCR unavailable or failed, an invalid provider
// answer) are recorded in the items; an error is returned only when the post should be
// retried: the store or the provider is unreachable, or ctx ended.
func (a *Analyzer) Analyze(ctx context.Context, p *events.Post) (*events.PostVisionAnalyzed, error) {
	imgs := Images(p)
	if len(imgs) == 0 {
		return nil, ErrNoImages
	}
	out := &events.PostVisionAnalyzed{
		PostRef:  p.PostRef,
		Rev:      events.Rev{Version: p.Version()},
		Items:    make([]events.VisionItem, 0, len(imgs)),
		Provider: Provider,
		Model:    Model,
	}
	if d := a.opts.Describer; d != nil {
		out.Provider, out.Model = d.Name(), d.Model()
	}
	for i, m := range imgs {
		if i >= a.cfg.MaxImages {
			out.Items = append(out.Items, events.VisionItem{MediaSHA256: m.SHA256, Reason: ReasonLimit,
				Error: fmt.Sprintf("not analysed: more than %d images in the post", a.cfg.MaxImages)})
			continue
		}
		it, err := a.analyzeOne(ctx, p.PostRef, m)
		if err != nil {
			return nil, fmt.Errorf("vision: post %s image %s: %w", p.Key(), m.SHA256, err)
		}
		out.Items = append(out.Items, it)
	}
	out.AnalyzedAt = a.opts.Now().UTC()
	return out, nil
}

// analyzeOne analyses one image; an error means the whole post must be retried.
func (a *Analyzer) analyzeOne(ctx context.Context, post events.PostRef, m events.Media) (events.VisionItem, error) {
	it := events.VisionItem{MediaSHA256: m.SHA256}
	if m.Size > a.cfg.MaxBytes {
		it.Reason, it.Error = ReasonTooLarge, fmt.Sprintf("%d bytes, at most %d", m.Size, a.cfg.MaxBytes)
		return it, nil
	}
	data, err := a.read(ctx, m.SHA256)
	switch {
	case errors.Is(err, media.ErrNotFound):
		it.Reason, it.Error = ReasonMissing, "the object is not in the media store"
		return it, nil
	case errors.Is(err, errTooLarge):
		it.Reason, it.Error = ReasonTooLarge, fmt.Sprintf("more than %d bytes", a.cfg.MaxBytes)
		return it, nil
	case err != nil:
		return it, err
	}
	img, format, err := Decode(data, a.cfg.MaxPixels)
	if err != nil {
		it.Reason, it.Error = ReasonDecode, err.Error()
		return it, nil
	}
	loc, err := AnalyzeLocal(img, format, a.cfg.Colors)
	if err != nil {
		it.Reason, it.Error = ReasonDecode, err.Error()
		return it, nil
	}
	it.Format, it.Width, it.Height = loc.Format, loc.Width, loc.Height
	it.PHash, it.DHash, it.Colors = FormatHash(loc.PHash), FormatHash(loc.DHash), loc.Colors

	if !a.cfg.DisableOCR {
		res, err := a.opts.OCR.Recognize(ctx, img)
		switch {
		case err == nil:
			it.OCRText, it.OCRConfidence = res.Text, res.Confidence
		case ctx.Err() != nil:
			return it, ctx.Err()
		default: // ErrOCRUnavailable or ErrOCRFailed: the item says so, the post goes on
			it.OCRError = err.Error()
		}
	}

	if d := a.opts.Describer; d != nil {
		desc, err := d.Describe(ctx, providerImage(data, format, img))
		switch {
		case err == nil:
			nsfw := desc.NSFW
			it.Description, it.Labels, it.Objects, it.Scene, it.IsMeme, it.NSFW = desc.Description, desc.Labels, desc.Objects, desc.Scene, desc.IsMeme, &nsfw
		case errors.Is(err, openaicompat.ErrInvalidAnswer), errors.Is(err, openaicompat.ErrRejected):
			it.ProviderError = err.Error()
		default: // unavailable, not configured, ctx ended: retry the post later
			return it, fmt.Errorf("describe: %w", err)
		}
	}

	if ix := a.opts.Index; ix != nil && a.cfg.NearThreshold >= 0 {
		if mt, ok := ix.Nearest(loc.PHash, a.cfg.NearThreshold, post); ok {
			it.NearDuplicateOf = &events.NearDuplicate{PostRef: mt.Post, MediaSHA256: mt.MediaSHA256, Distance: mt.Distance}
		}
	}
	return it, nil
}

var errTooLarge = errors.New("vision: object larger than the cap")

// read reads one object, at most MaxBytes of it.
func (a *Analyzer) read(ctx context.Context, sha string) ([]byte, error) {
	rc, _, err := a.opts.Objects.Get(ctx, sha)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, a.cfg.MaxBytes+1))
	cerr := rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sha, err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("close %s: %w", sha, cerr)
	}
	if int64(len(data)) > a.cfg.MaxBytes {
		return nil, errTooLarge
	}
	return data, nil
}

// providerMaxSide is the longest side of an image sent to a provider; larger ones are
// scaled down (vision models downscale anyway, and the request stays small).
const providerMaxSide = 1024

// providerImage is the image as a provider gets it: the original bytes when they are small
// enough, else a JPEG scaled to providerMaxSide.
func providerImage(data []byte, format string, img image.Image) Image {
	b := img.Bounds()
	if max(b.Dx(), b.Dy()) <= providerMaxSide && len(data) <= 4<<20 {
		return Image{MIME: "image/" + format, Data: data}
	}
	scale := float64(providerMaxSide) / float64(max(b.Dx(), b.Dy()))
	w, h := max(1, int(float64(b.Dx())*scale)), max(1, int(float64(b.Dy())*scale))
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85}); err != nil {
		// Encoding an in-memory RGBA image into a buffer cannot fail; send the original.
		return Image{MIME: "image/" + format, Data: data}
	}
	return Image{MIME: "image/jpeg", Data: buf.Bytes()}
}
