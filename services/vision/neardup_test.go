package vision_test

import (
	"bytes"
	"image"
	"io"
	"math/bits"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/vision"
)

// TestNearDuplicatesAcrossChannels: the same picture re-encoded and resized, posted in
// other channels, links to its first post; distinct pictures do not.
func TestNearDuplicatesAcrossChannels(t *testing.T) {
	st := newStore(t)
	ix := vision.NewIndex()
	a := newAnalyzer(t, vision.Config{DisableOCR: true}, vision.Options{Objects: st, Index: ix})
	seq := uint64(0)
	analyze := func(p *events.Post) *events.PostVisionAnalyzed {
		t.Helper()
		f, err := a.Analyze(ctxT(t), p)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		if err := ix.AddFact(seq, f); err != nil {
			t.Fatal(err)
		}
		return f
	}

	orig := scene(42, 640, 480)
	origSHA := put(t, st, encodeJPEG(t, orig, 92))
	first := analyze(newPost(1, 1, photo(origSHA)))
	if nd := first.Items[0].NearDuplicateOf; nd != nil {
		t.Fatalf("the first post of a picture links to %+v", nd)
	}

	variants := []struct {
		name string
		img  image.Image
		enc  func(image.Image) []byte
	}{
		{"jpeg quality 40", orig, func(m image.Image) []byte { return encodeJPEG(t, m, 40) }},
		{"half size png", resize(orig, 320, 240), func(m image.Image) []byte { return encodePNG(t, m) }},
		{"upscaled jpeg 70", resize(orig, 1024, 768), func(m image.Image) []byte { return encodeJPEG(t, m, 70) }},
		{"thumbnail jpeg 60", resize(orig, 160, 120), func(m image.Image) []byte { return encodeJPEG(t, m, 60) }},
		// A 2.5 % border cropped away and scaled back moves this pHash by 6 bits: the link
		// needs the threshold, not only equal hashes.
		{"cropped jpeg 80", resize(orig.SubImage(image.Rect(16, 12, 624, 468)), 640, 480), func(m image.Image) []byte { return encodeJPEG(t, m, 80) }},
	}
	maxSeen := 0
	for i, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			sha := put(t, st, v.enc(v.img))
			f := analyze(newPost(int64(100+i), 5, photo(sha)))
			nd := f.Items[0].NearDuplicateOf
			if nd == nil {
				t.Fatalf("not linked (phash %s vs original %s)", f.Items[0].PHash, first.Items[0].PHash)
			}
			if nd.PostRef != post(1, 1) || nd.MediaSHA256 != origSHA || nd.Distance > vision.DefaultNearThreshold {
				t.Fatalf("linked to %+v, want post 1/1 image %s within %d", nd, origSHA, vision.DefaultNearThreshold)
			}
			t.Logf("distance %d", nd.Distance)
			maxSeen = max(maxSeen, nd.Distance)
		})
	}
	if maxSeen == 0 {
		t.Errorf("every variant has the original's exact pHash: the threshold is untested")
	}

	minDistinct := 64
	for i := range 20 {
		img := scene(uint64(1000+i), 640, 480)
		sha := put(t, st, encodeJPEG(t, img, 85))
		f := analyze(newPost(int64(200+i), 1, photo(sha)))
		if nd := f.Items[0].NearDuplicateOf; nd != nil {
			t.Errorf("distinct picture %d linked to %+v", i, nd)
		}
		h, err := vision.ParseHash(f.Items[0].PHash)
		if err != nil {
			t.Fatal(err)
		}
		o, err := vision.ParseHash(first.Items[0].PHash)
		if err != nil {
			t.Fatal(err)
		}
		minDistinct = min(minDistinct, bits.OnesCount64(h^o))
	}
	t.Logf("closest distinct picture to the original: %d bits", minDistinct)

	again, err := a.Analyze(ctxT(t), newPost(1, 1, photo(origSHA)))
	if err != nil {
		t.Fatal(err)
	}
	if nd := again.Items[0].NearDuplicateOf; nd != nil {
		t.Errorf("re-analysing the first post links it to a later one: %+v", nd)
	}
}

// TestIndexRebuiltByReplayLinksTheSame: an index rebuilt from the facts alone gives a new
// post the same link as the index that saw them live.
func TestIndexRebuiltByReplayLinksTheSame(t *testing.T) {
	mem := media.NewMemory(1 << 24)
	live := vision.NewIndex()
	a := newAnalyzer(t, vision.Config{DisableOCR: true}, vision.Options{Objects: mem, Index: live})
	var log []*events.PostVisionAnalyzed
	for i := range 5 {
		sha, _, err := mem.Put(ctxT(t), readerOf(encodeJPEG(t, scene(uint64(500+i), 320, 240), 90)), media.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		f, err := a.Analyze(ctxT(t), newPost(int64(i+1), 1, photo(sha)))
		if err != nil {
			t.Fatal(err)
		}
		if err := live.AddFact(uint64(len(log)+1), f); err != nil {
			t.Fatal(err)
		}
		log = append(log, f)
	}
	rebuilt := vision.NewIndex()
	for i, f := range log {
		if err := rebuilt.AddFact(uint64(i+1), f); err != nil {
			t.Fatal(err)
		}
	}
	if rebuilt.Seq() != live.Seq() || rebuilt.Len() != live.Len() {
		t.Fatalf("rebuilt seq %d len %d, live seq %d len %d", rebuilt.Seq(), rebuilt.Len(), live.Seq(), live.Len())
	}
	sha, _, err := mem.Put(ctxT(t), readerOf(encodeJPEG(t, resize(scene(502, 320, 240), 200, 150), 50)), media.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	b := newAnalyzer(t, vision.Config{DisableOCR: true}, vision.Options{Objects: mem, Index: rebuilt})
	f, err := b.Analyze(ctxT(t), newPost(99, 1, photo(sha)))
	if err != nil {
		t.Fatal(err)
	}
	if nd := f.Items[0].NearDuplicateOf; nd == nil || nd.PostRef != post(3, 1) {
		t.Fatalf("rebuilt index links to %+v, want post 3/1", nd)
	}
}

func readerOf(b []byte) io.Reader { return bytes.NewReader(b) }
