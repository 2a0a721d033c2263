package textnorm

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The rune table is a cache of classify (and of foldRune): the scanner reads a rune the same
// whether it is in the table or not.
func TestRuneTableIsClassify(t *testing.T) {
	for r := range rune(tableRunes) {
		if got, want := runeClasses[r]&^classNFC, classify(r); got != want {
			t.Errorf("class of %U: %08b, classify says %08b", r, got, want)
		}
		if foldedRunes[r] != foldRune(r) {
			t.Errorf("fold of %U: %U, foldRune says %U", r, foldedRunes[r], foldRune(r))
		}
	}
}

// isNFC answers as norm.NFC.IsNormalString does, on text mixing the table's runes (those
// marked NFC-safe and combining marks, which are not) with others.
func TestIsNFCAgreesWithNorm(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var safe []rune
	for r := range rune(tableRunes) {
		if runeClasses[r]&classNFC != 0 {
			safe = append(safe, r)
		}
	}
	if len(safe) < 1500 {
		t.Fatalf("only %d NFC-safe runes below %U", len(safe), tableRunes)
	}
	var b strings.Builder
	for range 200_000 {
		b.Reset()
		for range 1 + rng.IntN(8) {
			switch k := rng.IntN(10); {
			case k == 0:
				b.WriteRune(rune(rng.IntN(0x3000)))
			case k == 1:
				b.WriteRune(rune(rng.IntN(tableRunes)))
			default:
				b.WriteRune(safe[rng.IntN(len(safe))])
			}
		}
		s := b.String()
		if got, want := isNFC(s), norm.NFC.IsNormalString(s); got != want {
			t.Fatalf("isNFC(%+q) = %v, norm says %v", s, got, want)
		}
		if isNFC(s) && norm.NFC.String(s) != s {
			t.Fatalf("isNFC(%+q), but its NFC is %+q", s, norm.NFC.String(s))
		}
	}
}

// decodeMultibyte decodes as utf8.DecodeRuneInString does, valid or not.
func TestDecodeMultibyte(t *testing.T) {
	for c0 := 0x80; c0 < 0x100; c0++ {
		for c1 := 0; c1 < 0x100; c1++ {
			for _, s := range []string{string([]byte{byte(c0), byte(c1)}), string([]byte{byte(c0)}), string([]byte{byte(c0), byte(c1), 0x80, 0x80})} {
				r, n := decodeMultibyte(s)
				wr, wn := utf8.DecodeRuneInString(s)
				if r != wr || n != wn {
					t.Fatalf("decodeMultibyte(%+q) = %U, %d; utf8 says %U, %d", s, r, n, wr, wn)
				}
			}
		}
	}
}
