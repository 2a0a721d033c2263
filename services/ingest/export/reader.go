package export

import (
	"bufio"
	"bytes"
	"io"
	"sort"
)

// fixReader feeds the JSON decoder. It does three things:
//
//   - It drops a UTF-8 byte order mark at the start of the file.
//   - It rewrites Telegram Desktop's "\xHH" string escapes, which it writes for control
//     characters other than \n, \r and \t and which JSON does not allow, as "\u00HH".
//   - It keeps the bytes it produced from a mark onwards, so the walker can find the exact
//     position of a token or of a syntax error that the decoder only reports vaguely.
//
// Offsets handed to the decoder are "output" offsets; inputOffset maps them back to bytes of
// the file.
type fixReader struct {
	src     *bufio.Reader
	scratch []byte
	pending []byte // produced but not yet read
	outBuf  []byte
	inPos   int64 // file bytes consumed
	outPos  int64 // bytes produced
	// trailing counts the backslashes that ended the previous chunk.
	trailing int
	adj      []adjust

	// kept holds produced bytes; kept[0] is output offset keptBase, and bytes before
	// keptBase+head are no longer needed (they are dropped in bulk, not on every mark).
	kept     []byte
	keptBase int64
	head     int
	// noKeep: nothing is kept (the fast walker keeps what it needs itself).
	noKeep bool
}

// adjust says that from output offset out on, file offset = output offset + delta.
type adjust struct{ out, delta int64 }

var bom = []byte{0xEF, 0xBB, 0xBF}

func newFixReader(r io.Reader) *fixReader {
	f := &fixReader{src: bufio.NewReaderSize(r, 64<<10), scratch: make([]byte, 32<<10)}
	if head, _ := f.src.Peek(3); bytes.Equal(head, bom) {
		_, _ = f.src.Discard(3)
		f.inPos = 3
		f.adj = append(f.adj, adjust{out: 0, delta: 3})
	}
	return f
}

func (f *fixReader) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		n, err := f.src.Read(f.scratch)
		if n > 0 {
			f.transform(f.scratch[:n])
			break
		}
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// transform rewrites "\xHH" escapes. JSON allows a backslash only inside a string, so an
// escape is a backslash that ends an odd run of backslashes, followed by 'x'; no other state
// is needed, and the common case (no "\x" in the chunk) is a plain copy.
func (f *fixReader) transform(in []byte) {
	out := f.outBuf[:0]
	if cap(out) < len(in)*3/2+8 {
		out = make([]byte, 0, len(in)*3/2+8)
	}
	escape := func(inAfter int) {
		out = append(out, 'u', '0', '0')
		outAfter := f.outPos + int64(len(out))
		f.adj = append(f.adj, adjust{out: outAfter, delta: f.inPos + int64(inAfter) - outAfter})
	}
	i := 0
	if f.trailing%2 == 1 && len(in) > 0 && in[0] == 'x' {
		escape(1)
		i = 1
	}
	for {
		j := bytes.Index(in[i:], backslashX)
		if j < 0 {
			out = append(out, in[i:]...)
			break
		}
		p := i + j
		run := 1
		k := p - 1
		for ; k >= 0 && in[k] == '\\'; k-- {
			run++
		}
		if k < 0 {
			run += f.trailing
		}
		out = append(out, in[i:p+1]...)
		if run%2 == 1 {
			escape(p + 2)
		} else {
			out = append(out, 'x')
		}
		i = p + 2
	}
	n := 0
	for n < len(in) && in[len(in)-1-n] == '\\' {
		n++
	}
	if n == len(in) {
		n += f.trailing
	}
	f.trailing = n
	f.inPos += int64(len(in))
	f.outPos += int64(len(out))
	f.outBuf = out
	f.pending = out
	if !f.noKeep {
		f.kept = append(f.kept, out...)
	}
}

var backslashX = []byte(`\x`)

// mark says that output bytes before off are no longer needed.
func (f *fixReader) mark(off int64) {
	h := off - f.keptBase
	if h <= int64(f.head) {
		return
	}
	if h > int64(len(f.kept)) {
		h = int64(len(f.kept))
	}
	f.head = int(h)
	if f.head >= 64<<10 && f.head > len(f.kept)/2 {
		n := copy(f.kept, f.kept[f.head:])
		f.kept = f.kept[:n]
		f.keptBase += int64(f.head)
		f.head = 0
	}
}

// from returns the kept bytes from output offset off to what has been produced so far.
func (f *fixReader) from(off int64) []byte {
	i := off - f.keptBase
	if i < int64(f.head) || i > int64(len(f.kept)) {
		return nil
	}
	return f.kept[i:]
}

// inputOffset maps an output offset to a byte offset of the file.
func (f *fixReader) inputOffset(out int64) int64 {
	i := sort.Search(len(f.adj), func(i int) bool { return f.adj[i].out > out })
	if i == 0 {
		return out
	}
	return out + f.adj[i-1].delta
}
