package vision

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/tgflow/tgflow/events"
)

// Ref is where an indexed image was first seen: its post, its object and the log sequence
// of the posts.vision.analyzed fact that carried it.
type Ref struct {
	Post        events.PostRef
	MediaSHA256 string
	Seq         uint64
}

// Match is an indexed image near a query hash.
type Match struct {
	Ref
	Distance int
}

// Index finds earlier images whose 64-bit pHash is within a Hamming distance of a query, by
// multi-index hashing (Norouzi et al.): the hash is cut into six chunks of 11, 11, 11, 11,
// 10 and 10 bits, each the key of its own table. Two hashes within distance r agree within
// ⌊r/6⌋ bits on at least one chunk (pigeonhole), so a lookup reads only the buckets of the
// chunk values that near in each table and checks the full distance of the hashes found
// there: for r = 10 that is 6 × 12 buckets of about n/2048 hashes each, instead of a scan
// of all n. Buckets keep the full hash next to its id, so the check reads them in order.
// When the threshold is so wide that the buckets would hold more than all the hashes,
// Nearest scans instead.
//
// One entry is kept per distinct hash: the first seen (lowest sequence), so a picture
// reposted a hundred times is indexed once and points at its first post.
//
// Index is safe for concurrent use.
type Index struct {
	mu     sync.RWMutex
	hashes []uint64
	refs   []Ref
	exact  map[uint64]int32
	tables [numChunks][]bucket
	seq    uint64
}

// bucket holds the hashes whose chunk has one value, and their ids: the hashes alone are
// what a lookup scans, so they are kept contiguous.
type bucket struct {
	hashes []uint64
	ids    []int32
}

const numChunks = 6

// chunkShift and chunkBits cut a hash into numChunks chunks covering its 64 bits.
var (
	chunkShift = [numChunks]uint{0, 11, 22, 33, 44, 54}
	chunkBits  = [numChunks]uint{11, 11, 11, 11, 10, 10}
)

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{exact: map[uint64]int32{}}
	for i := range ix.tables {
		ix.tables[i] = make([]bucket, 1<<chunkBits[i])
	}
	return ix
}

func chunk(h uint64, i int) uint32 { return uint32(h>>chunkShift[i]) & (1<<chunkBits[i] - 1) }

// Add indexes an image. A hash already indexed keeps the reference with the lower
// sequence; Add reports whether the index changed.
func (ix *Index) Add(hash uint64, ref Ref) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if i, ok := ix.exact[hash]; ok {
		if ref.Seq < ix.refs[i].Seq {
			ix.refs[i] = ref
			return true
		}
		return false
	}
	id := int32(len(ix.hashes))
	ix.hashes = append(ix.hashes, hash)
	ix.refs = append(ix.refs, ref)
	ix.exact[hash] = id
	for i := range ix.tables {
		bk := &ix.tables[i][chunk(hash, i)]
		bk.hashes = append(bk.hashes, hash)
		bk.ids = append(bk.ids, id)
	}
	return true
}

// AddFact indexes the items of a posts.vision.analyzed fact read at log sequence seq and
// records seq as reflected. Items without a pHash (missing, undecodable) are skipped; an
// unparsable pHash is reported (errors wrapping ErrBadHash) after the others are added.
func (ix *Index) AddFact(seq uint64, f *events.PostVisionAnalyzed) error {
	var errs []error
	for i, it := range f.Items {
		if it.PHash == "" {
			continue
		}
		h, err := ParseHash(it.PHash)
		if err != nil {
			errs = append(errs, fmt.Errorf("post %s items[%d]: %w", f.Key(), i, err))
			continue
		}
		ix.Add(h, Ref{Post: f.PostRef, MediaSHA256: it.MediaSHA256, Seq: seq})
	}
	ix.mu.Lock()
	ix.seq = max(ix.seq, seq)
	ix.mu.Unlock()
	return errors.Join(errs...)
}

// Seq is the highest log sequence added with AddFact: replaying resumes after it.
func (ix *Index) Seq() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.seq
}

// Len is the number of distinct hashes indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.hashes)
}

// Nearest finds the indexed image closest to hash within maxDistance that is earlier than
// self: images of the post self are never matched, and when self's own image is found
// among the candidates, only images first seen before it count (re-analysing a post links
// it to what preceded it, never to what came after). Ties go to the earliest sequence.
func (ix *Index) Nearest(hash uint64, maxDistance int, self events.PostRef) (Match, bool) {
	if maxDistance < 0 {
		return Match{}, false
	}
	maxDistance = min(maxDistance, 64)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var cands []int32
	r := maxDistance / numChunks
	// The expected share of all hashes the buckets of the balls hold.
	share := 0.0
	for i := range numChunks {
		share += float64(ballSize(chunkBits[i], r)) / float64(uint64(1)<<chunkBits[i])
	}
	if share >= 1 {
		for id, h := range ix.hashes {
			if bits.OnesCount64(h^hash) <= maxDistance {
				cands = append(cands, int32(id))
			}
		}
	} else {
		for i := range numChunks {
			table := ix.tables[i]
			forBall(chunk(hash, i), chunkBits[i], r, func(c uint32) {
				bk := &table[c]
				for j, h := range bk.hashes {
					if bits.OnesCount64(h^hash) <= maxDistance {
						cands = append(cands, bk.ids[j])
					}
				}
			})
		}
	}
	return ix.pick(cands, hash, self)
}

// pick chooses among candidates within the distance. ix.mu is held.
func (ix *Index) pick(cands []int32, hash uint64, self events.PostRef) (Match, bool) {
	bound := ^uint64(0)
	for _, id := range cands {
		if ref := ix.refs[id]; ref.Post == self {
			bound = min(bound, ref.Seq)
		}
	}
	var best Match
	found := false
	for _, id := range cands {
		ref := ix.refs[id]
		if ref.Post == self || ref.Seq >= bound {
			continue
		}
		d := bits.OnesCount64(ix.hashes[id] ^ hash)
		if !found || d < best.Distance || (d == best.Distance && ref.Seq < best.Seq) {
			best, found = Match{Ref: ref, Distance: d}, true
		}
	}
	return best, found
}

// ballSize is the number of w-bit values within Hamming distance r of one value.
func ballSize(w uint, r int) int {
	n, c := 0, 1
	for k := 0; k <= min(r, int(w)); k++ {
		n += c
		c = c * (int(w) - k) / (k + 1)
	}
	return n
}

// forBall calls fn with every w-bit value within Hamming distance r of v.
func forBall(v uint32, w uint, r int, fn func(uint32)) {
	var rec func(v uint32, from uint, left int)
	rec = func(v uint32, from uint, left int) {
		fn(v)
		if left == 0 {
			return
		}
		for b := from; b < w; b++ {
			rec(v^(1<<b), b+1, left-1)
		}
	}
	rec(v, 0, min(r, int(w)))
}
