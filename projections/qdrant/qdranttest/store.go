package qdranttest

import (
	"fmt"
	"log"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// store is the whole server state. One RWMutex guards the collection and alias tables and
// every point in them: writes are serialized, reads run in parallel, and an alias change
// (several actions in one request) is applied under the write lock, so no reader sees half
// of it.
type store struct {
	mu          sync.RWMutex
	collections map[string]*collection
	aliases     map[string]string // alias name → collection name

	// pending are the writes answered without wait, not yet applied, in arrival order;
	// flushing is set while a flush is scheduled. Both are guarded by mu.
	pending  []pendingWrite
	flushing bool
}

// pendingWrite is a write answered with status Acknowledged and applied later.
type pendingWrite struct {
	c  *collection
	op func(*collection) error
}

// asyncDelay is how long a write without wait stays invisible after its answer: long enough
// that a read issued right after the answer misses it, as it may with Qdrant.
const asyncDelay = 20 * time.Millisecond

func newStore() *store {
	return &store{collections: map[string]*collection{}, aliases: map[string]string{}}
}

// write runs op on the collection (or alias) name, which counts n operations. With wait the
// earlier pending writes and then op are applied before it returns (status Completed, or op's
// error); without it op is queued behind them, applied after asyncDelay, and it returns at
// once (status Acknowledged).
func (s *store) write(name string, wait bool, n int, op func(*collection) error) ([]*qd.UpdateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.resolve(name)
	if err != nil {
		return nil, err
	}
	st := qd.UpdateStatus_Completed
	if wait {
		s.flushLocked()
		if err := op(c); err != nil {
			return nil, err
		}
	} else {
		st = qd.UpdateStatus_Acknowledged
		s.pending = append(s.pending, pendingWrite{c: c, op: op})
		if !s.flushing {
			s.flushing = true
			time.AfterFunc(asyncDelay, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.flushLocked()
			})
		}
	}
	out := make([]*qd.UpdateResult, n)
	for i := range out {
		out[i] = &qd.UpdateResult{OperationId: ptr(c.nextOp()), Status: st}
	}
	return out, nil
}

// flushLocked applies the pending writes in order. A failing one is lost and logged: its
// client was answered already (Qdrant, too, only logs it). The caller holds the write lock.
func (s *store) flushLocked() {
	for _, w := range s.pending {
		if err := w.op(w.c); err != nil {
			log.Printf("qdranttest: asynchronous write to %s failed after its answer: %v", w.c.name, err)
		}
	}
	s.pending = nil
	s.flushing = false
}

// collection is one collection with a single unnamed dense vector.
type collection struct {
	name     string
	size     int
	distance qd.Distance
	config   *qd.CollectionConfig
	points   map[string]*point // by pointKey
	schema   map[string]*qd.PayloadSchemaInfo
	opID     uint64

	// sorted caches the point keys in Qdrant's id order (numeric ids first, then UUIDs).
	// Writers hold the store's write lock and reset it; readers hold the read lock and
	// rebuild it under sortMu.
	sortMu sync.Mutex
	sorted []string
}

type point struct {
	key     string // pointKey(id)
	id      *qd.PointId
	vector  []float32
	payload map[string]*qd.Value
}

// resolve finds a collection by its name or by an alias of it. The caller holds s.mu.
func (s *store) resolve(name string) (*collection, error) {
	if c, ok := s.collections[name]; ok {
		return c, nil
	}
	if target, ok := s.aliases[name]; ok {
		if c, ok := s.collections[target]; ok {
			return c, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", name)
}

func (c *collection) nextOp() uint64 {
	c.opID++
	return c.opID
}

// keys returns the point keys in id order.
func (c *collection) keys() []string {
	c.sortMu.Lock()
	defer c.sortMu.Unlock()
	if c.sorted == nil {
		c.sorted = make([]string, 0, len(c.points))
		for k := range c.points {
			c.sorted = append(c.sorted, k)
		}
		slices.Sort(c.sorted)
	}
	return c.sorted
}

// put stores a point, replacing any point with the same id. The caller holds the write lock.
func (c *collection) put(key string, p *point) {
	if _, ok := c.points[key]; !ok {
		c.sorted = nil
	}
	c.points[key] = p
}

// remove deletes a point. The caller holds the write lock.
func (c *collection) remove(key string) {
	if _, ok := c.points[key]; ok {
		delete(c.points, key)
		c.sorted = nil
	}
}

// pointKey is the map key of a point id. Its string order is Qdrant's id order: numeric ids
// (zero-padded) before UUIDs, UUIDs by their canonical lower-case form (= their 128-bit value).
func pointKey(id *qd.PointId) (string, error) {
	switch v := id.GetPointIdOptions().(type) {
	case *qd.PointId_Num:
		return fmt.Sprintf("n%020d", v.Num), nil
	case *qd.PointId_Uuid:
		u, err := uuid.Parse(v.Uuid)
		if err != nil {
			return "", status.Errorf(codes.InvalidArgument, "Unable to parse UUID: %s", v.Uuid)
		}
		return "u" + u.String(), nil
	}
	return "", status.Error(codes.InvalidArgument, "Wrong input: point id is missing")
}

// canonicalID is the id as Qdrant returns it: UUIDs in lower-case hyphenated form.
func canonicalID(id *qd.PointId) *qd.PointId {
	if u, ok := id.GetPointIdOptions().(*qd.PointId_Uuid); ok {
		if parsed, err := uuid.Parse(u.Uuid); err == nil {
			return qd.NewIDUUID(parsed.String())
		}
	}
	return proto.Clone(id).(*qd.PointId)
}

// prepareVector validates a vector against the collection and returns the stored form:
// Qdrant normalizes vectors of Cosine collections on upsert and returns them normalized.
func (c *collection) prepareVector(v []float32) ([]float32, error) {
	if len(v) != c.size {
		return nil, status.Errorf(codes.InvalidArgument,
			"Wrong input: Vector dimension error: expected dim: %d, got %d", c.size, len(v))
	}
	out := slices.Clone(v)
	if c.distance == qd.Distance_Cosine {
		normalize(out)
	}
	return out, nil
}

// normalize scales v to unit length in place; a zero vector stays as it is (as in Qdrant).
func normalize(v []float32) {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	n := math.Sqrt(sum)
	if n < 1e-30 {
		return
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
}

// copyPayload copies the map, not the values: stored values are never changed in place
// (every update builds a new map), and request messages are not reused after their call, so
// points and responses can share them.
func copyPayload(p map[string]*qd.Value) map[string]*qd.Value {
	out := make(map[string]*qd.Value, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}
