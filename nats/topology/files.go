package topology

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// File is one committed JSON config: its path relative to the nats/ directory and content.
type File struct {
	Path string
	Data []byte
}

// Files renders every stream and consumer config as the JSON that `nats stream add
// --config` and `nats consumer add --config` accept.
func Files() ([]File, error) {
	var out []File
	for _, s := range Streams() {
		b, err := marshal(s)
		if err != nil {
			return nil, err
		}
		out = append(out, File{Path: filepath.Join("streams", s.Name+".json"), Data: b})
	}
	for _, c := range Consumers() {
		b, err := marshal(c.Config())
		if err != nil {
			return nil, err
		}
		out = append(out, File{Path: filepath.Join("consumers", LogStream, c.Name+".json"), Data: b})
	}
	return out, nil
}

// WriteFiles writes Files under dir (the repository's nats/ directory).
func WriteFiles(dir string) error {
	files, err := Files()
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

func marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
