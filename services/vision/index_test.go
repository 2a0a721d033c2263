package vision_test

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/vision"
)

func post(ch, msg int64) events.PostRef {
	return events.PostRef{ChannelID: events.ChannelID(ch), MessageID: msg}
}

// linearNearest is the reference: a scan of every indexed hash, with the same rules.
type linearEntry struct {
	hash uint64
	ref  vision.Ref
}

func linearNearest(entries []linearEntry, hash uint64, maxD int, self events.PostRef) (vision.Match, bool) {
	bound := ^uint64(0)
	for _, e := range entries {
		if e.ref.Post == self && bits.OnesCount64(e.hash^hash) <= maxD {
			bound = min(bound, e.ref.Seq)
		}
	}
	var best vision.Match
	found := false
	for _, e := range entries {
		d := bits.OnesCount64(e.hash ^ hash)
		if d > maxD || e.ref.Post == self || e.ref.Seq >= bound {
			continue
		}
		if !found || d < best.Distance || (d == best.Distance && e.ref.Seq < best.Seq) {
			best, found = vision.Match{Ref: e.ref, Distance: d}, true
		}
	}
	return best, found
}

// flip returns h with n distinct random bits flipped.
func flip(r *rand.Rand, h uint64, n int) uint64 {
	for _, b := range r.Perm(64)[:n] {
		h ^= 1 << b
	}
	return h
}

// TestIndexAgreesWithLinearScan: multi-index hashing finds exactly what a scan finds, for
// clustered hashes (near-duplicates at every distance) and every threshold up to 20.
func TestIndexAgreesWithLinearScan(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	ix := vision.NewIndex()
	var entries []linearEntry
	exact := map[uint64]bool{}
	var bases []uint64
	for i := range 3000 {
		var h uint64
		if len(bases) > 0 && r.IntN(2) == 0 {
			h = flip(r, bases[r.IntN(len(bases))], r.IntN(16))
		} else {
			h = r.Uint64()
			bases = append(bases, h)
		}
		ref := vision.Ref{Post: post(1+int64(r.IntN(5)), int64(i+1)), MediaSHA256: "sha", Seq: uint64(i + 1)}
		ix.Add(h, ref)
		if !exact[h] {
			exact[h] = true
			entries = append(entries, linearEntry{h, ref})
		}
	}
	if ix.Len() != len(entries) {
		t.Fatalf("index holds %d hashes, want %d distinct", ix.Len(), len(entries))
	}
	for q := range 2000 {
		var h uint64
		if q%4 == 0 {
			h = r.Uint64()
		} else {
			h = flip(r, bases[r.IntN(len(bases))], r.IntN(14))
		}
		maxD := r.IntN(21)
		self := post(1+int64(r.IntN(5)), int64(1+r.IntN(3000)))
		got, gotOK := ix.Nearest(h, maxD, self)
		want, wantOK := linearNearest(entries, h, maxD, self)
		if gotOK != wantOK || got != want {
			t.Fatalf("query %d hash %016x d≤%d: index %+v %v, scan %+v %v", q, h, maxD, got, gotOK, want, wantOK)
		}
	}
}

func TestIndexNearestRules(t *testing.T) {
	const h = uint64(0xf0f0f0f0f0f0f0f0)
	ix := vision.NewIndex()
	ix.Add(h, vision.Ref{Post: post(1, 1), MediaSHA256: "a", Seq: 10})
	ix.Add(h^0b111, vision.Ref{Post: post(2, 1), MediaSHA256: "b", Seq: 20})      // 3 bits away
	ix.Add(h^0xff00, vision.Ref{Post: post(3, 1), MediaSHA256: "c", Seq: 30})     // 8 bits away
	ix.Add(h, vision.Ref{Post: post(4, 1), MediaSHA256: "a", Seq: 40})            // the same picture, later
	ix.Add(h^0xffff_ffff, vision.Ref{Post: post(5, 1), MediaSHA256: "d", Seq: 5}) // far
	tests := []struct {
		name     string
		hash     uint64
		maxD     int
		self     events.PostRef
		wantPost events.PostRef
		wantD    int
		wantOK   bool
	}{
		{"the first post of a picture is found", h, 10, post(9, 9), post(1, 1), 0, true},
		{"a repost links to the first post", h, 10, post(4, 1), post(1, 1), 0, true},
		{"the first post itself links to nothing later", h, 10, post(1, 1), events.PostRef{}, 0, false},
		{"a near image within the threshold", h ^ 0b11, 10, post(9, 9), post(2, 1), 1, true},
		{"outside the threshold", h ^ 0xffff_0000_0000, 10, post(9, 9), events.PostRef{}, 0, false},
		{"threshold 0 is exact", h ^ 1, 0, post(9, 9), events.PostRef{}, 0, false},
		{"negative threshold finds nothing", h, -1, post(9, 9), events.PostRef{}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := ix.Nearest(tc.hash, tc.maxD, tc.self)
			if ok != tc.wantOK || (ok && (m.Post != tc.wantPost || m.Distance != tc.wantD)) {
				t.Fatalf("Nearest = %+v %v, want post %v distance %d %v", m, ok, tc.wantPost, tc.wantD, tc.wantOK)
			}
		})
	}
}

// TestIndexRebuiltFromFacts: replaying facts rebuilds the same index, twice is the same
// as once, and the sequence it reflects is the last one added.
func TestIndexRebuiltFromFacts(t *testing.T) {
	facts := []*events.PostVisionAnalyzed{
		{PostRef: post(1, 1), Items: []events.VisionItem{{MediaSHA256: "a", PHash: "0000000000000003"}, {MediaSHA256: "m", Reason: vision.ReasonMissing}}},
		{PostRef: post(2, 7), Items: []events.VisionItem{{MediaSHA256: "b", PHash: "0000000000000005"}}},
		{PostRef: post(3, 1), Items: []events.VisionItem{{MediaSHA256: "c", PHash: "ffffffffffffffff"}}},
	}
	ix := vision.NewIndex()
	for range 2 {
		for i, f := range facts {
			if err := ix.AddFact(uint64(100+i), f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ix.Len() != 3 || ix.Seq() != 102 {
		t.Fatalf("len %d seq %d, want 3 and 102", ix.Len(), ix.Seq())
	}
	m, ok := ix.Nearest(0x1, 10, post(9, 9))
	if !ok || m.Post != post(1, 1) || m.MediaSHA256 != "a" || m.Seq != 100 || m.Distance != 1 {
		t.Fatalf("Nearest = %+v %v, want post 1/1 image a at seq 100, distance 1 (tie with 2/7 goes to the earlier)", m, ok)
	}
	bad := &events.PostVisionAnalyzed{PostRef: post(4, 1), Items: []events.VisionItem{{MediaSHA256: "x", PHash: "zz"}, {MediaSHA256: "y", PHash: "0f0f0f0f0f0f0f0f"}}}
	if err := ix.AddFact(200, bad); !errors.Is(err, vision.ErrBadHash) {
		t.Fatalf("err = %v, want ErrBadHash", err)
	}
	if ix.Len() != 4 || ix.Seq() != 200 {
		t.Fatalf("after a fact with one bad hash: len %d seq %d, want 4 and 200", ix.Len(), ix.Seq())
	}
}

// TestIndexKeepsTheFirstSeen: whatever the order facts arrive in, a picture points at
// the post with the lowest sequence.
func TestIndexKeepsTheFirstSeen(t *testing.T) {
	ix := vision.NewIndex()
	if !ix.Add(7, vision.Ref{Post: post(2, 2), MediaSHA256: "later", Seq: 50}) {
		t.Fatal("first Add reports no change")
	}
	if !ix.Add(7, vision.Ref{Post: post(1, 1), MediaSHA256: "earlier", Seq: 10}) {
		t.Fatal("an earlier sighting reports no change")
	}
	if ix.Add(7, vision.Ref{Post: post(3, 3), MediaSHA256: "latest", Seq: 90}) {
		t.Fatal("a later sighting changed the index")
	}
	m, ok := ix.Nearest(7, 0, post(9, 9))
	if !ok || m.Seq != 10 || m.MediaSHA256 != "earlier" || ix.Len() != 1 {
		t.Fatalf("Nearest = %+v %v (len %d), want the sighting at seq 10", m, ok, ix.Len())
	}
}

func TestHashFormat(t *testing.T) {
	for _, h := range []uint64{0, 1, 0xf0f0f0f0f0f0f0f0, ^uint64(0)} {
		s := vision.FormatHash(h)
		back, err := vision.ParseHash(s)
		if len(s) != 16 || err != nil || back != h {
			t.Errorf("%x → %q → %x, %v", h, s, back, err)
		}
	}
	for _, s := range []string{"", "abc", "0123456789abcdeg", "0123456789abcdef0"} {
		if _, err := vision.ParseHash(s); !errors.Is(err, vision.ErrBadHash) {
			t.Errorf("ParseHash(%q) err = %v, want ErrBadHash", s, err)
		}
	}
}
