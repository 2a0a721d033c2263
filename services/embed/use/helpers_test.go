package use_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/services/embed/use"
)

// EnvTestModelsDir names the models directory the tests read (scripts/test.sh sets it
// to the cache scripts/fetch-models.sh fills); unset, the user cache dir is tried.
const EnvTestModelsDir = "TGFLOW_TEST_MODELS_DIR"

// modelsDir returns a models directory holding the USE files, or stops the test: a
// failure under CI, a skip otherwise.
func modelsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvTestModelsDir)
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err == nil {
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
	msg := "the USE model is not in " + EnvTestModelsDir + "=" + os.Getenv(EnvTestModelsDir) +
		" nor in the user cache; run ./scripts/fetch-models.sh (or tgflow models pull) and set " +
		EnvTestModelsDir
	if testenv.InCI() {
		t.Fatal(msg + " (CI is set: this is a failure, not a skip)")
	}
	t.Skip("skipping: " + msg)
	return ""
}
