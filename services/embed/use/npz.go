package use

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	kflate "github.com/klauspost/compress/flate"
)

// ErrFormat marks a model file that is not what this package expects (wrong layout,
// dtype, shape or a truncated file): re-pulling the model is the fix, retrying is not.
var ErrFormat = errors.New("use: unexpected model file format")

// array is one .npy member of an .npz archive: little-endian, C order.
type array struct {
	descr string // numpy dtype string: "<f4", "|u1", "<f8", "|i1"
	shape []int
	data  []byte
}

func (a array) size() int {
	n := 1
	for _, d := range a.shape {
		n *= d
	}
	return n
}

// float32s returns the array as float32, checking dtype and shape.
func (a array) float32s(shape ...int) ([]float32, error) {
	if a.descr != "<f4" {
		return nil, fmt.Errorf("%w: dtype %s, want <f4", ErrFormat, a.descr)
	}
	if err := a.checkShape(shape); err != nil {
		return nil, err
	}
	out := make([]float32, a.size())
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(a.data[4*i:]))
	}
	return out, nil
}

func (a array) checkShape(shape []int) error {
	if len(shape) != len(a.shape) {
		return fmt.Errorf("%w: shape %v, want %v", ErrFormat, a.shape, shape)
	}
	for i := range shape {
		if shape[i] != a.shape[i] {
			return fmt.Errorf("%w: shape %v, want %v", ErrFormat, a.shape, shape)
		}
	}
	return nil
}

// readNPZ reads every member of an .npz archive (numpy.savez[_compressed]), members in
// parallel (GOMAXPROCS) and inflated with github.com/klauspost/compress/flate (already a
// dependency of NATS; about twice as fast as compress/flate on the 30 MB weights).
//
// The .npy format is small and fixed (a magic string, a version, a Python-dict header with
// descr/fortran_order/shape, then raw data), so a 60-line reader is used rather than a
// dependency; only what the weights file needs is supported: little-endian or byte-sized
// dtypes, C order.
func readNPZ(r io.ReaderAt, size int64) (map[string]array, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: npz: %w", ErrFormat, err)
	}
	zr.RegisterDecompressor(zip.Deflate, func(r io.Reader) io.ReadCloser { return kflate.NewReader(r) })
	var members []*zip.File
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".npy") {
			members = append(members, f)
		}
	}
	arrays := make([]array, len(members))
	errs := make([]error, len(members))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(members)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(members) {
					return
				}
				arrays[i], errs[i] = readMember(members[i])
			}
		})
	}
	wg.Wait()
	out := make(map[string]array, len(members))
	for i, f := range members {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out[strings.TrimSuffix(f.Name, ".npy")] = arrays[i]
	}
	return out, nil
}

func readMember(f *zip.File) (array, error) {
	rc, err := f.Open()
	if err != nil {
		return array{}, fmt.Errorf("%w: npz member %s: %w", ErrFormat, f.Name, err)
	}
	a, err := readNPY(rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", ErrFormat, cerr)
	}
	if err != nil {
		return array{}, fmt.Errorf("npz member %s: %w", f.Name, err)
	}
	return a, nil
}

// maxNPYBytes bounds one array (the largest in the weights file is 3.9 MB).
const maxNPYBytes = 1 << 28

func readNPY(r io.Reader) (array, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return array{}, fmt.Errorf("%w: npy preamble: %w", ErrFormat, err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return array{}, fmt.Errorf("%w: not an npy file", ErrFormat)
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return array{}, fmt.Errorf("%w: npy header length: %w", ErrFormat, err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return array{}, fmt.Errorf("%w: npy header length: %w", ErrFormat, err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return array{}, fmt.Errorf("%w: npy version %d", ErrFormat, pre[6])
	}
	if hlen > 1<<16 {
		return array{}, fmt.Errorf("%w: npy header of %d bytes", ErrFormat, hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return array{}, fmt.Errorf("%w: npy header: %w", ErrFormat, err)
	}
	a, err := parseNPYHeader(string(hdr))
	if err != nil {
		return array{}, err
	}
	var item int
	switch a.descr {
	case "<f4", "<i4", "<u4":
		item = 4
	case "<f8", "<i8":
		item = 8
	case "|u1", "|i1", "<u1", "<i1", "|b1":
		item = 1
	default:
		return array{}, fmt.Errorf("%w: npy dtype %q", ErrFormat, a.descr)
	}
	if n := a.size(); n < 0 || n > maxNPYBytes/item {
		return array{}, fmt.Errorf("%w: npy array of shape %v is too large", ErrFormat, a.shape)
	}
	a.data = make([]byte, a.size()*item)
	if _, err := io.ReadFull(r, a.data); err != nil {
		return array{}, fmt.Errorf("%w: npy data (%d bytes): %w", ErrFormat, len(a.data), err)
	}
	return a, nil
}

// parseNPYHeader parses the Python dict literal of an .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (512, 256), }
func parseNPYHeader(h string) (array, error) {
	field := func(key string) (string, error) {
		i := strings.Index(h, "'"+key+"'")
		if i < 0 {
			return "", fmt.Errorf("%w: npy header lacks %s: %q", ErrFormat, key, h)
		}
		rest := strings.TrimLeft(h[i+len(key)+2:], " ")
		rest, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return "", fmt.Errorf("%w: npy header %q", ErrFormat, h)
		}
		return strings.TrimLeft(rest, " "), nil
	}
	var a array
	d, err := field("descr")
	if err != nil {
		return a, err
	}
	if len(d) < 2 || d[0] != '\'' {
		return a, fmt.Errorf("%w: npy descr in %q", ErrFormat, h)
	}
	end := strings.IndexByte(d[1:], '\'')
	if end < 0 {
		return a, fmt.Errorf("%w: npy descr in %q", ErrFormat, h)
	}
	a.descr = d[1 : 1+end]
	fo, err := field("fortran_order")
	if err != nil {
		return a, err
	}
	if !strings.HasPrefix(fo, "False") {
		return a, fmt.Errorf("%w: fortran-order arrays are not supported", ErrFormat)
	}
	s, err := field("shape")
	if err != nil {
		return a, err
	}
	if len(s) == 0 || s[0] != '(' {
		return a, fmt.Errorf("%w: npy shape in %q", ErrFormat, h)
	}
	end = strings.IndexByte(s, ')')
	if end < 0 {
		return a, fmt.Errorf("%w: npy shape in %q", ErrFormat, h)
	}
	a.shape = []int{}
	for _, p := range strings.Split(s[1:end], ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > maxNPYBytes {
			return a, fmt.Errorf("%w: npy shape %q", ErrFormat, s[:end+1])
		}
		a.shape = append(a.shape, n)
	}
	return a, nil
}
