package export

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// refFix is the plain definition of what fixReader does to a whole file at once: each
// backslash escapes the next byte, and an escaped 'x' becomes "u00". origin maps every output
// byte to the file byte it came from (the added "u00" to the 'x').
func refFix(in []byte) (out []byte, origin []int64) {
	start := 0
	if bytes.HasPrefix(in, bom) {
		start = 3
	}
	for i := start; i < len(in); i++ {
		if in[i] == '\\' && i+1 < len(in) {
			out, origin = append(out, '\\'), append(origin, int64(i))
			i++
			if in[i] == 'x' {
				out = append(out, 'u', '0', '0')
				origin = append(origin, int64(i), int64(i), int64(i))
				continue
			}
		}
		out, origin = append(out, in[i]), append(origin, int64(i))
	}
	return out, origin
}

func TestFixReader(t *testing.T) {
	cases := []string{
		`{"text": "plain"}`,
		`{"text": "a\x0Bb"}`,
		`{"text": "C:\\xyz"}`,       // an escaped backslash, then x: kept
		`{"text": "C:\\\x01"}`,      // an escaped backslash, then an escape
		`{"text": "\\\\\\\\x\x1F"}`, // long runs
		"\xEF\xBB\xBF" + `{"text": "\x0B"}`,
		`\x\x\x`,
		`{"a": "\\", "b": "\x0A"}`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var b bytes.Buffer
		for range rng.IntN(60) {
			b.WriteString([]string{`\`, `x`, `"`, `a`, `\x0B`, `\\`}[rng.IntN(6)])
		}
		cases = append(cases, b.String())
	}
	for _, in := range cases {
		want, origin := refFix([]byte(in))
		readers := map[string]func() io.Reader{
			"whole":    func() io.Reader { return bytes.NewReader([]byte(in)) },
			"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader([]byte(in))) },
			"halves":   func() io.Reader { return iotest.HalfReader(bytes.NewReader([]byte(in))) },
		}
		for name, r := range readers {
			fr := newFixReader(r())
			got, err := io.ReadAll(fr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %q: got %q, want %q", name, in, got, want)
				continue
			}
			for o := range got {
				// Inside an added "u00" the mapping may point up to 2 bytes on; everywhere
				// else it is exact.
				if d := fr.inputOffset(int64(o)) - origin[o]; d != 0 && !(got[o] == '0' || got[o] == 'u') {
					t.Errorf("%s %q: output byte %d maps to %d, want %d", name, in, o, fr.inputOffset(int64(o)), origin[o])
					break
				}
			}
		}
	}
}
