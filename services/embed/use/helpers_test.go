package use_test

import (
	"testing"

	"github.com/tgflow/tgflow/services/embed/use/usetest"
)

// modelsDir returns a models directory holding the USE files, or stops the test (a
// failure under CI, a skip otherwise): the rule shared with every package's tests.
func modelsDir(t testing.TB) string {
	t.Helper()
	return usetest.ModelsDir(t)
}
