package doctor

import (
	"context"
	"fmt"

	"github.com/tgflow/tgflow/nats/topology"
)

// Stream is a stream's size against its limits (a limit of -1 or 0 is none).
type Stream struct {
	Name     string `json:"name"`
	Msgs     uint64 `json:"msgs"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	MaxMsgs  int64  `json:"max_msgs"`
	MaxBytes int64  `json:"max_bytes"`
}

// Storage is the account's JetStream file store against its limit, and the free disk where
// the log is stored when doctor can see it (laptop mode).
type Storage struct {
	Store    uint64 `json:"store_bytes"`
	MaxStore int64  `json:"max_store_bytes"`
	Disk     *Disk  `json:"disk,omitempty"`
}

// Disk is the file system holding StoreDir.
type Disk struct {
	Path  string `json:"path"`
	Free  uint64 `json:"free_bytes"`
	Total uint64 `json:"total_bytes"`
}

func (d *doctor) storage(ctx context.Context) error {
	for _, name := range []string{topology.LogStream, topology.DLQStream} {
		s, err := d.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		st := Stream{Name: name, Msgs: info.State.Msgs, Bytes: info.State.Bytes, FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq,
			MaxMsgs: info.Config.MaxMsgs, MaxBytes: info.Config.MaxBytes}
		d.r.Streams = append(d.r.Streams, st)
		// Both streams discard new messages at a limit: a full log refuses facts.
		if st.MaxBytes > 0 && float64(st.Bytes) > d.th.FullRatio*float64(st.MaxBytes) {
			d.problem(SeverityFail, "storage", name, "%d of %d bytes used (over %.0f%%): at the limit new facts are refused", st.Bytes, st.MaxBytes, 100*d.th.FullRatio)
		}
		if st.MaxMsgs > 0 && float64(st.Msgs) > d.th.FullRatio*float64(st.MaxMsgs) {
			d.problem(SeverityFail, "storage", name, "%d of %d messages (over %.0f%%): at the limit new facts are refused", st.Msgs, st.MaxMsgs, 100*d.th.FullRatio)
		}
	}
	ai, err := d.js.AccountInfo(ctx)
	if err != nil {
		return fmt.Errorf("account info: %w", err)
	}
	d.r.Storage = Storage{Store: ai.Store, MaxStore: ai.Limits.MaxStore}
	if ai.Limits.MaxStore > 0 && float64(ai.Store) > d.th.FullRatio*float64(ai.Limits.MaxStore) {
		d.problem(SeverityFail, "storage", "account", "JetStream store %d of %d bytes (over %.0f%%)", ai.Store, ai.Limits.MaxStore, 100*d.th.FullRatio)
	}
	if d.o.StoreDir != "" {
		free, total, err := diskSpace(d.o.StoreDir)
		if err != nil {
			d.problem(SeverityWarn, "storage", d.o.StoreDir, "free disk space cannot be read: %v", err)
			return nil
		}
		d.r.Storage.Disk = &Disk{Path: d.o.StoreDir, Free: free, Total: total}
		if free < d.th.MinFreeDisk {
			d.problem(SeverityFail, "storage", d.o.StoreDir, "%d bytes free (less than %d)", free, d.th.MinFreeDisk)
		}
	}
	return nil
}
