package postgres

import (
	"time"
)

// Bulk mode state cache. A shadow filled in bulk mode is written by one handle from empty, so
// the stored state Apply reads for each batch (posts, pipeline_progress and pages state, see
// stored) is exactly what this handle wrote before. The handle keeps it in memory and skips the
// reads while it is known to be complete: it starts empty when Apply finds the checkpoint at 0
// (nothing applied: the tables are empty) and stays valid while the checkpoint row, read under
// its lock at the start of every Apply, is still the one this handle wrote last (same table,
// same seq, same updated_at). Any other writer (a rebuild resumed by another process, a
// dropped and re-created shadow) moves the checkpoint: the cache is dropped for good and
// Apply reads the stored state as usual. It is also dropped for good when it outgrows
// maxCachedKeys.

// maxCachedKeys bounds the keys (posts, progress rows and pages together) of a state cache.
var maxCachedKeys = 1_000_000

// stateCache is the complete stored state of a schema at the checkpoint this handle wrote.
type stateCache struct {
	st       stored
	tableOID uint32    // projection_checkpoints of the schema it describes
	seq      int64     // checkpoint this handle last wrote
	at       time.Time // updated_at written with it (microsecond precision)
}

// checkpointRow is the checkpoint row as read FOR UPDATE at the start of Apply.
type checkpointRow struct {
	tableOID uint32
	seq      int64
	at       time.Time
}

// matches reports whether the cache describes the schema at checkpoint cp.
func (c *stateCache) matches(cp checkpointRow) bool {
	return c != nil && c.tableOID == cp.tableOID && c.seq == cp.seq && c.at.Equal(cp.at)
}

func (c *stateCache) size() int { return len(c.st.posts) + len(c.st.progress) + len(c.st.pages) }

// merge records the rows a committed batch wrote (after) and the checkpoint it wrote.
func (c *stateCache) merge(after *stored, cp checkpointRow) {
	for k, v := range after.posts {
		c.st.posts[k] = v
	}
	for k, v := range after.progress {
		c.st.progress[k] = v
	}
	for u, v := range after.pages {
		c.st.pages[u] = v
	}
	c.tableOID, c.seq, c.at = cp.tableOID, cp.seq, cp.at
}

func newStored() stored {
	return stored{posts: map[key]postState{}, progress: map[key]*progressRow{}, pages: map[string]pageState{}}
}
