// Package usetest finds the USE model files for tests of any package.
package usetest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/services/embed/use"
)

// EnvModelsDir names the models directory the tests read (scripts/test.sh sets it to the
// cache scripts/fetch-models.sh fills); unset, the user cache dir is tried.
const EnvModelsDir = "TGFLOW_TEST_MODELS_DIR"

// ModelsDir returns a models directory holding the USE files, or stops the test: a failure
// under CI, a skip otherwise.
func ModelsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvModelsDir)
	if dir == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(cache, "tgflow", "models")
		}
	}
	if dir != "" {
		st, err := use.Check(dir)
		if err == nil && st.OK() {
			return dir
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("models dir %s: %v", dir, err)
		}
	}
	msg := "the USE model is not in " + EnvModelsDir + "=" + os.Getenv(EnvModelsDir) +
		" nor in the user cache; run ./scripts/fetch-models.sh (or tgflow models pull) and set " + EnvModelsDir
	if testenv.InCI() {
		t.Fatal(msg + " (CI is set: this is a failure, not a skip)")
	}
	t.Skip("skipping: " + msg)
	return ""
}

// Load loads the USE embedder for a test.
func Load(t testing.TB) *use.Embedder {
	t.Helper()
	e, err := use.Load(ModelsDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return e
}
