package vision_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tgflow/tgflow/services/ingest/media"
	"github.com/tgflow/tgflow/services/vision"
)

// fakeTesseract writes a script that answers like tesseract: --version, --list-langs, and
// for an image one word after 200 ms, logging how many copies of itself were running.
func fakeTesseract(t *testing.T) (binary, logPath string) {
	t.Helper()
	dir := t.TempDir()
	run := filepath.Join(dir, "running")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "concurrency.log")
	script := `#!/bin/bash
case "$1" in
--version) echo "tesseract 5.3.0-fake"; exit 0;;
--list-langs) printf 'List of available languages in "/fake" (2):\neng\nrus\n'; exit 0;;
esac
cat > /dev/null
touch "` + run + `/$$"
ls "` + run + `" | wc -l >> "` + logPath + `"
sleep 0.2
rm "` + run + `/$$"
printf 'level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n'
printf '5\t1\t1\t1\t1\t1\t0\t0\t10\t10\t88\tслово\n'
`
	binary = filepath.Join(dir, "tesseract")
	if err := os.WriteFile(binary, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return binary, logPath
}

// TestTesseractBoundsProcesses: concurrent analyses never run more tesseract processes
// than MaxProcs; the Analyzer, the Index and the recogniser are shared by goroutines.
func TestTesseractBoundsProcesses(t *testing.T) {
	binary, logPath := fakeTesseract(t)
	ocr, err := vision.NewTesseract(vision.TesseractConfig{Binary: binary, MaxProcs: 2})
	if err != nil {
		t.Fatal(err)
	}
	mem := media.NewMemory(1 << 24)
	ix := vision.NewIndex()
	a := newAnalyzer(t, vision.Config{}, vision.Options{Objects: mem, OCR: ocr, Index: ix})
	const n = 8
	shas := make([]string, n)
	for i := range shas {
		sha, _, err := mem.Put(ctxT(t), readerOf(encodePNG(t, scene(uint64(300+i%3), 64, 48))), media.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		shas[i] = sha
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seq := uint64(0)
	for i := range n {
		wg.Go(func() {
			f, err := a.Analyze(ctxT(t), newPost(int64(i+1), 1, photo(shas[i])))
			if err != nil {
				t.Error(err)
				return
			}
			if f.Items[0].OCRText != "слово" || f.Items[0].OCRConfidence != 0.88 {
				t.Errorf("item %+v", f.Items[0])
			}
			mu.Lock()
			seq++
			s := seq
			mu.Unlock()
			if err := ix.AddFact(s, f); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	if len(lines) != n {
		t.Fatalf("%d recognitions logged, want %d", len(lines), n)
	}
	most := 0
	for _, l := range lines {
		c, err := strconv.Atoi(l)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, c)
	}
	t.Logf("at most %d tesseract processes at once", most)
	if most > 2 {
		t.Errorf("%d tesseract processes ran at once, MaxProcs is 2", most)
	}
	if ix.Seq() != n || ix.Len() != 3 {
		t.Errorf("index seq %d len %d, want %d and 3 distinct pictures", ix.Seq(), ix.Len(), n)
	}
}
