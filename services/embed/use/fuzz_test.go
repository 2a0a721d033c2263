package use_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tgflow/tgflow/services/embed/use"
	"github.com/tgflow/tgflow/services/embed/use/usetest"
)

// FuzzTokenize: any text (invalid UTF-8, control characters, whitespace only, long runs of
// one character) tokenises without a panic into ids of the vocabulary, framed by <s> and
// </s>, the same ids every time.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		"", " ", "Релиз Go 1.26", "ёлка и Ёж", "GoLang 👍🏽 #tag", "\x00\xff\xfe", "ｆｕｌｌ　ｗｉｄｔｈ",
		"a\u0301\u0301\u0301", "\t\n\r  \u2581\u2581", "ааааааааааааааааааааааааааааааааааааааа",
	} {
		f.Add(s)
	}
	dir := usetest.ModelsDir(f)
	tok, err := use.LoadTokenizer(filepath.Join(use.Dir(dir), use.SPModelFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := tok.Encode(text)
		if len(ids) < 3 {
			t.Fatalf("%q: %d ids, want <s>, at least one piece (or <unk>), </s>", text, len(ids))
		}
		for i, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("%q: id %d at %d outside the vocabulary of %d", text, id, i, tok.VocabSize())
			}
		}
		if first, last := tok.Piece(int(ids[0])), tok.Piece(int(ids[len(ids)-1])); first != "<s>" || last != "</s>" {
			t.Fatalf("%q: ids %v framed by %q and %q, want <s> and </s>", text, ids, first, last)
		}
		if again := tok.Encode(text); !slices.Equal(ids, again) {
			t.Fatalf("%q: encoded twice: %v then %v", text, ids, again)
		}
	})
}

// FuzzLoadTokenizer: a corrupt or hostile model file is refused with an error, never a
// panic; one that loads has a vocabulary it can tokenise with.
func FuzzLoadTokenizer(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x05, 0x0a, 0x01, 'a', 0x15, 0, 0, 0x80, 0xbf})        // one piece "a", score -1
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})                         // a length past the end
	f.Add([]byte{0x22, 0x04, 0x2a, 0x02, 0x00, 0x01, 0x0a, 0x03, 0x0a, 0x01}) // normalizer spec, truncated piece
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), use.SPModelFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tok, err := use.LoadTokenizer(path)
		if err != nil {
			return
		}
		for _, s := range []string{"", "abc", "Привет, мир"} {
			for _, id := range tok.Encode(s) {
				if id < 0 || (int(id) >= tok.VocabSize() && id > 3) {
					t.Fatalf("%q: id %d outside the loaded vocabulary of %d", s, id, tok.VocabSize())
				}
			}
		}
	})
}
