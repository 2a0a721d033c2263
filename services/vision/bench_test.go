package vision_test

import (
	"image"
	"image/color"
	"image/draw"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tgflow/tgflow/services/vision"
)

// benchPhoto is a typical channel photo: 1280×960 JPEG at quality 85.
func benchPhoto(b *testing.B) []byte {
	b.Helper()
	return encodeJPEG(b, scene(77, 1280, 960), 85)
}

// benchTextPhoto is a 1280×720 JPEG screenshot-like picture with three lines of text.
func benchTextPhoto(b *testing.B) []byte {
	b.Helper()
	face := loadFont(b, 32)
	txt := renderText(face, ocrSamples[0].lines, color.Black, color.RGBA{0xf4, 0xf1, 0xe8, 0xff})
	img := image.NewRGBA(image.Rect(0, 0, 1280, 720))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{0xf4, 0xf1, 0xe8, 0xff}), image.Point{}, draw.Src)
	draw.Draw(img, txt.Bounds().Add(image.Pt(40, 200)), txt, image.Point{}, draw.Src)
	return encodeJPEG(b, img, 85)
}

// BenchmarkLocal is decode, hashes and colours of one photo, without OCR.
func BenchmarkLocal(b *testing.B) {
	data := benchPhoto(b)
	b.SetBytes(int64(len(data)))
	start, cpu0 := time.Now(), procCPU(b)
	for b.Loop() {
		img, format, err := vision.Decode(data, vision.DefaultMaxPixels)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := vision.AnalyzeLocal(img, format, vision.DefaultColors); err != nil {
			b.Fatal(err)
		}
	}
	reportImages(b, start, cpu0)
}

// reportImages reports images/s of wall time, and the CPU time per image of this process
// and its children (tesseract), which a busy shared machine does not inflate.
func reportImages(b *testing.B, start time.Time, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "images/s")
	b.ReportMetric(float64((procCPU(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/image")
}

// procCPU is the CPU time of this process and of its children that have been waited for.
func procCPU(b *testing.B) time.Duration {
	var self, kids unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &self); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &kids); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}

// BenchmarkLocalWithOCR adds Tesseract (one process per image, -l rus+eng) on a picture
// with text; GOMAXPROCS images run at once, as many as the recogniser allows.
func BenchmarkLocalWithOCR(b *testing.B) {
	ocr := requireTesseract(b)
	data := benchTextPhoto(b)
	ctx := ctxT(b)
	start, cpu0 := time.Now(), procCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			img, format, err := vision.Decode(data, vision.DefaultMaxPixels)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := vision.AnalyzeLocal(img, format, vision.DefaultColors); err != nil {
				b.Error(err)
				return
			}
			res, err := ocr.Recognize(ctx, img)
			if err != nil || res.Words == 0 {
				b.Errorf("ocr: %v, %d words", err, res.Words)
				return
			}
		}
	})
	reportImages(b, start, cpu0)
}

// BenchmarkNearest100k times near-duplicate lookups (threshold 10) in an index of 100k
// pHashes against a linear scan of the same hashes, in the same run, batch by batch. The
// machine may be shared, so besides wall time it reports the CPU time of the benchmark's
// thread (getrusage RUSAGE_THREAD), which other processes do not inflate; speedup is scan
// time / index time.
func BenchmarkNearest100k(b *testing.B) {
	const n = 100_000
	r := rand.New(rand.NewPCG(1, 2))
	ix := vision.NewIndex()
	hashes := make([]uint64, 0, n)
	var bases []uint64
	for i := range n {
		h := r.Uint64()
		if len(bases) > 0 && r.IntN(4) == 0 { // a quarter are near-duplicates of another
			h = flip(r, bases[r.IntN(len(bases))], r.IntN(8))
		} else {
			bases = append(bases, h)
		}
		if ix.Add(h, vision.Ref{Post: post(int64(1+i%500), int64(1+i)), MediaSHA256: "x", Seq: uint64(i + 1)}) {
			hashes = append(hashes, h)
		}
	}
	queries := make([]uint64, 256)
	for i := range queries {
		if i%2 == 0 {
			queries[i] = flip(r, bases[r.IntN(len(bases))], r.IntN(10))
		} else {
			queries[i] = r.Uint64()
		}
	}
	self := post(99999, 1)
	got := make([]int, len(queries))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ixWall, scanWall, ixCPU, scanCPU time.Duration
	lookups := 0
	for b.Loop() {
		w0, c0 := time.Now(), threadCPU(b)
		for i, q := range queries {
			got[i] = -1
			if m, ok := ix.Nearest(q, vision.DefaultNearThreshold, self); ok {
				got[i] = m.Distance
			}
		}
		w1, c1 := time.Now(), threadCPU(b)
		for i, q := range queries {
			best := -1
			for _, h := range hashes {
				if d := bits.OnesCount64(h ^ q); d <= vision.DefaultNearThreshold && (best < 0 || d < best) {
					best = d
				}
			}
			if best != got[i] {
				b.Fatalf("query %016x: index distance %d, scan %d", q, got[i], best)
			}
		}
		w2, c2 := time.Now(), threadCPU(b)
		ixWall, scanWall = ixWall+w1.Sub(w0), scanWall+w2.Sub(w1)
		ixCPU, scanCPU = ixCPU+c1-c0, scanCPU+c2-c1
		lookups += len(queries)
	}
	b.ReportMetric(float64(ixCPU.Nanoseconds())/float64(lookups), "index-cpu-ns/lookup")
	b.ReportMetric(float64(scanCPU.Nanoseconds())/float64(lookups), "scan-cpu-ns/lookup")
	b.ReportMetric(float64(scanCPU)/float64(max(ixCPU, 1)), "cpu-speedup")
	b.ReportMetric(float64(scanWall)/float64(max(ixWall, 1)), "wall-speedup")
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
