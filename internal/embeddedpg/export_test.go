package embeddedpg

import (
	"os"
	"path/filepath"
)

// ExtractJar extracts a jar given as bytes into dest, for tests.
func ExtractJar(b []byte, dest string) error {
	p := filepath.Join(filepath.Dir(dest), "test.jar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	return extract(p, dest)
}
