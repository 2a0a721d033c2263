// Package textnorm is the one text rule that tgflow's lexical code shares: the hashing
// embedder and the local tagger see a post through the same folding, the same tokens and the
// same stop words, so a topic description and a post meet on equal terms.
//
//   - Fold: Unicode NFC, lower case, ё → е, ’ → ', Unicode hyphens → '-'.
//   - Tokens: runs of letters and digits in Russian, English or any other script; a hyphen or
//     an apostrophe between two such runs joins them ("какой-то", "state-of-the-art",
//     "don't"). URLs (scheme://…, www.…, host.tld/path), e-mail addresses and @mentions are
//     dropped whole; tokens without a letter (numbers, versions like 1.23) are dropped; a
//     token is 2 to 48 runes long. #hashtags are tokens marked Hashtag, '#' stripped, letters,
//     digits and '_' only.
//   - Stems: the Snowball stemmer (github.com/kljensen/snowball) of the token's script,
//     Russian for Cyrillic, English for Latin; other and mixed scripts are left as they are;
//     each part of a hyphenated word is stemmed.
//   - Stop words: the Snowball project's Russian and English lists plus a few additions of
//     our own (stop_ru.txt, stop_en.txt say where each comes from and under which licence).
package textnorm

import (
	_ "embed"
	"hash/maphash"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/kljensen/snowball/english"
	"github.com/kljensen/snowball/russian"
	"golang.org/x/text/unicode/norm"
)

// Script is the writing system of a token's letters.
type Script uint8

// Scripts.
const (
	ScriptOther    Script = iota // letters of neither Latin nor Cyrillic script
	ScriptLatin                  // Latin letters only
	ScriptCyrillic               // Cyrillic letters only
	ScriptMixed                  // both
)

// Token is one word (or hashtag) of a text.
type Token struct {
	// Text is the folded form (Fold), without '#'.
	Text string
	// Hashtag is true for #words.
	Hashtag bool
	// Cap: the first letter was upper case in the source.
	Cap bool
	// Upper: every letter was upper case and there are at least two (an acronym: API, НАСА).
	Upper bool
	// SentenceStart: the token opens the text or a sentence (after . ! ? … or a new line),
	// where a capital letter says nothing about the word.
	SentenceStart bool
	// Script of the token's letters.
	Script Script
}

// Token length bounds, in runes.
const (
	MinTokenRunes = 2
	MaxTokenRunes = 48
)

// Fold returns s in NFC, lower case, with ё folded to е, the typographic apostrophe ’ to '
// and the Unicode hyphens U+2010, U+2011 to '-'.
func Fold(s string) string {
	if !isNFC(s) {
		s = norm.NFC.String(s)
	}
	return strings.Map(foldTabled, s)
}

// foldTabled is foldRune, from the table when r is in it.
func foldTabled(r rune) rune {
	if uint32(r) < tableRunes {
		return foldedRunes[r]
	}
	return foldRune(r)
}

func foldRune(r rune) rune {
	r = unicode.ToLower(r)
	switch r {
	case 'ё':
		return 'е'
	case '’':
		return '\''
	case '\u2010', '\u2011':
		return '-'
	}
	return r
}

// Tag is the one tag rule (tags, topic names): Fold, surrounding space and leading '#'
// removed, inner spaces joined by '_'. It returns "" for a tag without a letter or digit, or
// longer than MaxTokenRunes.
func Tag(s string) string {
	s = Fold(strings.TrimSpace(s))
	s = strings.TrimLeft(s, "#")
	if strings.IndexFunc(s, isSpace) >= 0 {
		s = strings.Join(strings.Fields(s), "_")
	}
	if s == "" || utf8.RuneCountInString(s) > MaxTokenRunes {
		return ""
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) < 0 {
		return ""
	}
	return s
}

// Tokenize returns the tokens of s in order.
func Tokenize(s string) []Token { return AppendTokens(nil, s) }

// AppendTokens appends the tokens of s to dst: callers on a hot path reuse dst. The tokens'
// Text share one allocation.
func AppendTokens(dst []Token, s string) []Token {
	if !isNFC(s) {
		s = norm.NFC.String(s)
	}
	sc := scanner{out: dst, sentenceStart: true}
	// The folded text is usually no longer than s; the builder grows when it is. A token's
	// Text is a substring of the builder's bytes, which are never written again.
	sc.buf.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, n = decodeMultibyte(s[i:])
		}
		if isSpace(r) {
			if r == '\n' || r == '\u2029' {
				sc.sentenceStart = true
			}
			i += n
			continue
		}
		j := i + n
		for j < len(s) {
			r, n := rune(s[j]), 1
			if r >= utf8.RuneSelf {
				r, n = decodeMultibyte(s[j:])
			}
			if isSpace(r) {
				break
			}
			j += n
		}
		sc.chunk(s[i:j])
		i = j
	}
	return sc.out
}

type scanner struct {
	out           []Token
	buf           strings.Builder
	sentenceStart bool
}

// Rune classes. The runes below tableRunes (ASCII, Latin, Greek, Cyrillic and their marks)
// are classified once, from the same unicode (and x/text NFC) functions that classify the
// runes above it, so that a rune's class is the same whichever way it is read: the scanner
// then tests a bit per rune instead of searching Unicode's range tables several times.
const tableRunes = 0x800

const (
	classSpace  uint8 = 1 << iota // unicode.IsSpace
	classWord                     // isWordRune: a letter, digit or mark
	classLetter                   // unicode.IsLetter
	classUpper                    // unicode.IsUpper
	classLatin                    // a letter of Latin script
	classCyr                      // a letter of Cyrillic script
	classNFC                      // NFC alone, and in NFC whatever precedes or follows it (see isNFC)
)

// The tables are package variables with an initializer (not set by init), as the stop
// words' initializer folds its words: Go initialises variables in dependency order, and
// before any init function.
var runeClasses, foldedRunes = runeTables()

func runeTables() (classes [tableRunes]uint8, folded [tableRunes]rune) {
	for r := range rune(tableRunes) {
		classes[r] = classify(r)
		// A starter (combining class 0) that nothing before it combines with, and that
		// is NFC by itself: a string of such runes is NFC, since normalisation then works
		// on each rune alone.
		if p := norm.NFC.PropertiesString(string(r)); p.BoundaryBefore() && norm.NFC.IsNormalString(string(r)) {
			classes[r] |= classNFC
		}
		folded[r] = foldRune(r)
	}
	return classes, folded
}

// classify computes a rune's classes but classNFC (only the table's runes have it).
func classify(r rune) uint8 {
	var c uint8
	if unicode.IsSpace(r) {
		c |= classSpace
	}
	if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
		c |= classWord
	}
	if unicode.IsUpper(r) {
		c |= classUpper
	}
	if unicode.IsLetter(r) {
		c |= classLetter
		switch {
		case r < 0x80:
			c |= classLatin
		case r >= 0x400 && r <= 0x4ff:
			c |= classCyr
		case unicode.Is(unicode.Latin, r):
			c |= classLatin
		case unicode.Is(unicode.Cyrillic, r):
			c |= classCyr
		}
	}
	return c
}

// runeClass is classify(r), from the table when r is in it.
func runeClass(r rune) uint8 {
	if uint32(r) < tableRunes {
		return runeClasses[r]
	}
	return classify(r)
}

// decodeRune is utf8.DecodeRuneInString (s is not empty), with ASCII and the two-byte
// sequences (Latin, Greek, Cyrillic) decoded inline. The compiler does not inline it (cost
// 85, budget 80), so the scanner's loops spell out its ASCII test and call decodeMultibyte
// only for the rest; decodeRune is for the places read once per token.
func decodeRune(s string) (rune, int) {
	if c := s[0]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return decodeMultibyte(s)
}

func decodeMultibyte(s string) (rune, int) {
	c := s[0]
	// 0xC2–0xDF lead a two-byte sequence (0xC0 and 0xC1 only overlong ones, invalid).
	if c >= 0xc2 && c <= 0xdf && len(s) > 1 && s[1]&0xc0 == 0x80 {
		return rune(c&0x1f)<<6 | rune(s[1]&0x3f), 2
	}
	return utf8.DecodeRuneInString(s)
}

func isSpace(r rune) bool {
	if uint32(r) < tableRunes {
		return runeClasses[r]&classSpace != 0
	}
	return unicode.IsSpace(r)
}

// isNFC reports whether s is in NFC: at once for text whose runes are all NFC alone and
// combine with nothing (most Russian and English text), else by norm.NFC.IsNormalString.
func isNFC(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := decodeMultibyte(s[i:])
		if uint32(r) >= tableRunes || runeClasses[r]&classNFC == 0 {
			return norm.NFC.IsNormalString(s)
		}
		i += n
	}
	return true
}

func isWordRune(r rune) bool {
	if uint32(r) < tableRunes {
		return runeClasses[r]&classWord != 0
	}
	return classify(r)&classWord != 0
}

func isJoiner(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\'', '’':
		return true
	}
	return false
}

func isTerminator(r rune) bool {
	switch r {
	case '.', '!', '?', '…':
		return true
	}
	return false
}

// chunk tokenizes one whitespace-delimited piece of text.
func (sc *scanner) chunk(c string) {
	// An e-mail address holds '@', a URL '/' or "www." (most chunks hold none of the three).
	if mayHoldLink(c) {
		if isEmail(c) {
			return
		}
		if u := urlStart(c); u >= 0 {
			c = c[:u]
		}
	}
	for i := 0; i < len(c); {
		r, n := rune(c[i]), 1
		if r >= utf8.RuneSelf {
			r, n = decodeMultibyte(c[i:])
		}
		switch {
		case (r == '#' || r == '@') && i+n < len(c):
			next, _ := decodeRune(c[i+n:])
			if !isWordRune(next) && next != '_' {
				i += n
				continue
			}
			end := i + n
			for end < len(c) {
				r2, n2 := rune(c[end]), 1
				if r2 >= utf8.RuneSelf {
					r2, n2 = decodeMultibyte(c[end:])
				}
				if !isWordRune(r2) && r2 != '_' {
					break
				}
				end += n2
			}
			if r == '#' {
				sc.emit(c[i+n:end], true)
			}
			i = end
		case isWordRune(r):
			end := i + n
			for end < len(c) {
				r2, n2 := rune(c[end]), 1
				if r2 >= utf8.RuneSelf {
					r2, n2 = decodeMultibyte(c[end:])
				}
				if isWordRune(r2) {
					end += n2
					continue
				}
				if isJoiner(r2) && end+n2 < len(c) {
					if r3, _ := decodeRune(c[end+n2:]); isWordRune(r3) {
						end += n2
						continue
					}
				}
				break
			}
			sc.emit(c[i:end], false)
			i = end
		default:
			if isTerminator(r) && !hasWordRune(c[i+n:]) {
				sc.sentenceStart = true
			}
			i += n
		}
	}
}

// mayHoldLink: c holds '@', '/' or '.', which every e-mail address and URL does.
func mayHoldLink(c string) bool {
	for i := 0; i < len(c); i++ {
		switch c[i] {
		case '@', '/', '.':
			return true
		}
	}
	return false
}

func hasWordRune(s string) bool {
	for _, r := range s {
		if isWordRune(r) {
			return true
		}
	}
	return false
}

// emit folds one token into the buffer, or drops it (no letter, too short, too long).
func (sc *scanner) emit(w string, hashtag bool) {
	start := sc.sentenceStart
	sc.sentenceStart = false
	letters, upper, runes := 0, 0, 0
	var scripts uint8
	firstCap := false
	// The token is folded as it is read, into memory of its own: it is written to the
	// buffer only if it is kept, and a token of more than MaxTokenRunes runes is not.
	var folded [MaxTokenRunes * utf8.UTFMax]byte
	m := 0
	for k := 0; k < len(w); {
		r, n := rune(w[k]), 1
		if r >= utf8.RuneSelf {
			r, n = decodeMultibyte(w[k:])
		}
		if runes++; runes > MaxTokenRunes {
			return
		}
		c := runeClass(r)
		if k == 0 {
			firstCap = c&classUpper != 0
		}
		if c&classLetter != 0 {
			letters++
			if c&classUpper != 0 {
				upper++
			}
			scripts |= c
		}
		if f := foldTabled(r); f < utf8.RuneSelf {
			folded[m] = byte(f)
			m++
		} else {
			m += utf8.EncodeRune(folded[m:], f)
		}
		k += n
	}
	if letters == 0 || runes < MinTokenRunes {
		return
	}
	from := sc.buf.Len()
	sc.buf.Write(folded[:m])
	script := ScriptOther
	latin, cyr := scripts&classLatin != 0, scripts&classCyr != 0
	switch {
	case latin && cyr:
		script = ScriptMixed
	case latin:
		script = ScriptLatin
	case cyr:
		script = ScriptCyrillic
	}
	sc.out = append(sc.out, Token{
		Text:          sc.buf.String()[from:],
		Hashtag:       hashtag,
		Cap:           firstCap,
		Upper:         upper == letters && letters >= 2,
		SentenceStart: start,
		Script:        script,
	})
}

// isEmail: local@domain.tld, with a word rune before the '@' (a mention starts with '@').
func isEmail(c string) bool {
	at := strings.IndexByte(c, '@')
	if at <= 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(c[:at])
	return isWordRune(r) && strings.IndexByte(c[at:], '.') > 0
}

// urlStart is the byte offset where a URL begins in the chunk c, or -1.
func urlStart(c string) int {
	if k := strings.Index(c, "://"); k > 0 {
		s := k
		for s > 0 && isASCIILetter(c[s-1]) {
			s--
		}
		if s < k {
			return s
		}
	}
	if k := indexWWW(c); k >= 0 && (k == 0 || !isWordByteBefore(c, k)) {
		return k
	}
	// host.tld/path: a dotted host of letters, digits and hyphens, then '/'.
	slash := strings.IndexByte(c, '/')
	if slash <= 0 {
		return -1
	}
	s := slash
	for s > 0 && (isASCIILetter(c[s-1]) || isASCIIDigit(c[s-1]) || c[s-1] == '.' || c[s-1] == '-') {
		s--
	}
	host := c[s:slash]
	dot := strings.LastIndexByte(host, '.')
	if dot <= 0 || dot == len(host)-1 {
		return -1
	}
	for i := dot + 1; i < len(host); i++ {
		if !isASCIILetter(host[i]) {
			return -1
		}
	}
	return s
}

// indexWWW is the offset of "www." in any case, or -1.
func indexWWW(c string) int {
	for i := 0; i+4 <= len(c); i++ {
		if c[i]|0x20 == 'w' && c[i+1]|0x20 == 'w' && c[i+2]|0x20 == 'w' && c[i+3] == '.' {
			return i
		}
	}
	return -1
}

func isWordByteBefore(c string, k int) bool {
	r, _ := utf8.DecodeLastRuneInString(c[:k])
	return isWordRune(r)
}

func isASCIILetter(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'z' }
func isASCIIDigit(b byte) bool  { return b >= '0' && b <= '9' }

//go:embed stop_ru.txt
var stopRU string

//go:embed stop_en.txt
var stopEN string

var stopWords = func() map[string]struct{} {
	m := make(map[string]struct{}, 512)
	for _, list := range []string{stopRU, stopEN} {
		for line := range strings.Lines(list) {
			w := strings.TrimSpace(line)
			if w == "" || strings.HasPrefix(w, "#") {
				continue
			}
			m[Fold(w)] = struct{}{}
		}
	}
	return m
}()

// IsStop reports whether a folded word is a stop word.
func IsStop(folded string) bool {
	_, ok := stopWords[folded]
	return ok
}

// Stem returns the Snowball stem of a token (its folded Text), in the stemmer of its script.
// Stems are cached (a bounded cache: a shard is emptied when full), as the stemmers
// allocate and a language's frequent words come back all the time.
func Stem(tok Token) string {
	var stem func(string, bool) string
	switch tok.Script {
	case ScriptCyrillic:
		stem = russian.Stem
	case ScriptLatin:
		stem = english.Stem
	default:
		return tok.Text
	}
	sh := &stemCache[maphash.String(stemSeed, tok.Text)%stemShards]
	sh.mu.RLock()
	s, ok := sh.m[tok.Text]
	sh.mu.RUnlock()
	if ok {
		return s
	}
	if strings.IndexByte(tok.Text, '-') < 0 {
		s = stem(tok.Text, true)
	} else {
		parts := strings.Split(tok.Text, "-")
		for i, p := range parts {
			parts[i] = stem(p, true)
		}
		s = strings.Join(parts, "-")
	}
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[string]string)
	}
	if len(sh.m) >= stemShardMax {
		clear(sh.m)
	}
	// The token's text shares its memory with the whole text: keep a copy.
	sh.m[strings.Clone(tok.Text)] = strings.Clone(s)
	sh.mu.Unlock()
	return s
}

const (
	stemShards   = 64
	stemShardMax = 4096
)

type stemShard struct {
	mu sync.RWMutex
	m  map[string]string
}

var (
	stemSeed  = maphash.MakeSeed()
	stemCache [stemShards]stemShard
)
