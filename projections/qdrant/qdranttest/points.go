package qdranttest

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sort"
	"time"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type pointsService struct {
	qd.UnimplementedPointsServer
	s *store
}

// Writes follow Qdrant's wait flag: with wait=true the write is applied before the answer
// (status Completed); without it the answer (status Acknowledged) comes first and the write
// is applied a moment later (asyncDelay), in arrival order, so a read right after an
// un-waited write may not see it, as with Qdrant. As in Qdrant, a missing collection and a
// payload with no JSON form are rejected at once; what fails only when applied (a vector of
// the wrong dimension, a missing point) fails unseen in an asynchronous write: it is lost.

func (ps *pointsService) Upsert(_ context.Context, req *qd.UpsertPoints) (*qd.PointsOperationResponse, error) {
	if err := checkUpsertMode(req.UpdateFilter, req.UpdateMode); err != nil {
		return nil, err
	}
	if err := checkPoints(req.GetPoints()); err != nil {
		return nil, err
	}
	return ps.write(req.GetCollectionName(), req.GetWait(), func(c *collection) error { return c.upsert(req.GetPoints()) })
}

func (ps *pointsService) Delete(_ context.Context, req *qd.DeletePoints) (*qd.PointsOperationResponse, error) {
	return ps.write(req.GetCollectionName(), req.GetWait(), func(c *collection) error { return c.deletePoints(req.GetPoints()) })
}

func (ps *pointsService) Get(_ context.Context, req *qd.GetPoints) (*qd.GetResponse, error) {
	start := time.Now()
	ps.s.mu.RLock()
	defer ps.s.mu.RUnlock()
	c, err := ps.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	resp := &qd.GetResponse{}
	seen := map[string]bool{}
	for _, id := range req.GetIds() {
		k, err := pointKey(id)
		if err != nil {
			return nil, err
		}
		p, ok := c.points[k]
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		resp.Result = append(resp.Result, retrieved(p, req.GetWithPayload(), req.WithVectors))
	}
	resp.Time = since(start)
	return resp, nil
}

func (ps *pointsService) SetPayload(_ context.Context, req *qd.SetPayloadPoints) (*qd.PointsOperationResponse, error) {
	if err := checkPayload(req.GetPayload()); err != nil {
		return nil, err
	}
	return ps.write(req.GetCollectionName(), req.GetWait(), func(c *collection) error {
		return c.setPayload(req.GetPayload(), req.PointsSelector, req.Key, false)
	})
}

func (ps *pointsService) OverwritePayload(_ context.Context, req *qd.SetPayloadPoints) (*qd.PointsOperationResponse, error) {
	if err := checkPayload(req.GetPayload()); err != nil {
		return nil, err
	}
	return ps.write(req.GetCollectionName(), req.GetWait(), func(c *collection) error {
		return c.setPayload(req.GetPayload(), req.PointsSelector, req.Key, true)
	})
}

func (ps *pointsService) DeletePayload(_ context.Context, req *qd.DeletePayloadPoints) (*qd.PointsOperationResponse, error) {
	return ps.write(req.GetCollectionName(), req.GetWait(), func(c *collection) error {
		return c.deletePayload(req.GetKeys(), req.PointsSelector)
	})
}

func (ps *pointsService) ClearPayload(_ context.Context, req *qd.ClearPayloadPoints) (*qd.PointsOperationResponse, error) {
	return ps.write(req.GetCollectionName(), req.GetWait(), func(c *collection) error {
		return c.setPayload(nil, req.GetPoints(), nil, true)
	})
}

// write applies op to the named collection (resolved now, as Qdrant resolves an alias when
// the request arrives): at once when wait is set, else after the answer (see above).
func (ps *pointsService) write(name string, wait bool, op func(*collection) error) (*qd.PointsOperationResponse, error) {
	start := time.Now()
	res, err := ps.s.write(name, wait, 1, op)
	if err != nil {
		return nil, err
	}
	return &qd.PointsOperationResponse{Result: res[0], Time: since(start)}, nil
}

// CreateFieldIndex records the index; filters work the same with or without one (as in
// Qdrant without strict mode), so the index only shows in the collection's payload schema.
func (ps *pointsService) CreateFieldIndex(_ context.Context, req *qd.CreateFieldIndexCollection) (*qd.PointsOperationResponse, error) {
	start := time.Now()
	if req.GetFieldName() == "" {
		return nil, status.Error(codes.InvalidArgument, "Wrong input: field name is empty")
	}
	if req.FieldType == nil {
		return nil, status.Error(codes.InvalidArgument, "Wrong input: qdranttest needs an explicit field type")
	}
	ps.s.mu.Lock()
	defer ps.s.mu.Unlock()
	c, err := ps.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	// FieldType counts from 0 (keyword), PayloadSchemaType from 1 (keyword) in the same order.
	c.schema[req.GetFieldName()] = &qd.PayloadSchemaInfo{
		DataType: qd.PayloadSchemaType(int32(req.GetFieldType()) + 1),
		Params:   req.FieldIndexParams,
	}
	return opResponse(c, start), nil
}

func (ps *pointsService) DeleteFieldIndex(_ context.Context, req *qd.DeleteFieldIndexCollection) (*qd.PointsOperationResponse, error) {
	start := time.Now()
	ps.s.mu.Lock()
	defer ps.s.mu.Unlock()
	c, err := ps.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	delete(c.schema, req.GetFieldName())
	return opResponse(c, start), nil
}

// UpdateBatch applies the operations in order. As in Qdrant, the batch is not a transaction:
// when an operation fails, the ones before it stay applied.
func (ps *pointsService) UpdateBatch(_ context.Context, req *qd.UpdateBatchPoints) (*qd.UpdateBatchResponse, error) {
	start := time.Now()
	var ops []func(*collection) error
	for _, op := range req.GetOperations() {
		var (
			apply func(*collection) error
			err   error
		)
		switch o := op.GetOperation().(type) {
		case *qd.PointsUpdateOperation_Upsert:
			if err = checkUpsertMode(o.Upsert.UpdateFilter, o.Upsert.UpdateMode); err == nil {
				err = checkPoints(o.Upsert.GetPoints())
			}
			apply = func(c *collection) error { return c.upsert(o.Upsert.GetPoints()) }
		case *qd.PointsUpdateOperation_DeletePoints_:
			apply = func(c *collection) error { return c.deletePoints(o.DeletePoints.GetPoints()) }
		case *qd.PointsUpdateOperation_SetPayload_:
			err = checkPayload(o.SetPayload.GetPayload())
			apply = func(c *collection) error {
				return c.setPayload(o.SetPayload.GetPayload(), o.SetPayload.PointsSelector, o.SetPayload.Key, false)
			}
		case *qd.PointsUpdateOperation_OverwritePayload_:
			err = checkPayload(o.OverwritePayload.GetPayload())
			apply = func(c *collection) error {
				return c.setPayload(o.OverwritePayload.GetPayload(), o.OverwritePayload.PointsSelector, o.OverwritePayload.Key, true)
			}
		case *qd.PointsUpdateOperation_DeletePayload_:
			apply = func(c *collection) error {
				return c.deletePayload(o.DeletePayload.GetKeys(), o.DeletePayload.PointsSelector)
			}
		case *qd.PointsUpdateOperation_ClearPayload_:
			apply = func(c *collection) error { return c.setPayload(nil, o.ClearPayload.GetPoints(), nil, true) }
		case nil:
			err = status.Error(codes.InvalidArgument, "Wrong input: empty operation")
		default:
			err = unimplemented("this batch operation kind")
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, apply)
	}
	res, err := ps.s.write(req.GetCollectionName(), req.GetWait(), len(ops), func(c *collection) error {
		for _, op := range ops {
			if err := op(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &qd.UpdateBatchResponse{Result: res, Time: since(start)}, nil
}

func (ps *pointsService) Scroll(_ context.Context, req *qd.ScrollPoints) (*qd.ScrollResponse, error) {
	start := time.Now()
	if req.OrderBy != nil {
		return nil, unimplemented("order_by scrolls")
	}
	if err := validateFilter(req.GetFilter()); err != nil {
		return nil, err
	}
	limit := 10
	if req.Limit != nil {
		limit = int(req.GetLimit())
	}
	if limit <= 0 {
		return nil, status.Error(codes.InvalidArgument, "Wrong input: limit must be 1 or larger")
	}
	ps.s.mu.RLock()
	defer ps.s.mu.RUnlock()
	c, err := ps.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	keys := c.keys()
	from := 0
	if req.Offset != nil {
		k, err := pointKey(req.GetOffset())
		if err != nil {
			return nil, err
		}
		from = sort.SearchStrings(keys, k)
	}
	resp := &qd.ScrollResponse{}
	for _, k := range keys[from:] {
		p := c.points[k]
		if !matchFilter(req.GetFilter(), p) {
			continue
		}
		if len(resp.Result) == limit {
			resp.NextPageOffset = canonicalID(p.id)
			break
		}
		resp.Result = append(resp.Result, retrievedDefault(p, req.GetWithPayload(), true, req.WithVectors))
	}
	resp.Time = since(start)
	return resp, nil
}

func (ps *pointsService) Count(_ context.Context, req *qd.CountPoints) (*qd.CountResponse, error) {
	start := time.Now()
	if err := validateFilter(req.GetFilter()); err != nil {
		return nil, err
	}
	ps.s.mu.RLock()
	defer ps.s.mu.RUnlock()
	c, err := ps.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	n := uint64(0)
	for _, p := range c.points {
		if matchFilter(req.GetFilter(), p) {
			n++
		}
	}
	return &qd.CountResponse{Result: &qd.CountResult{Count: n}, Time: since(start)}, nil
}

// Search is exact (brute force) nearest-neighbour search; Qdrant's HNSW is approximate, so
// on large collections Qdrant may rank differently where scores are close.
func (ps *pointsService) Search(_ context.Context, req *qd.SearchPoints) (*qd.SearchResponse, error) {
	start := time.Now()
	if name := req.GetVectorName(); name != "" {
		return nil, status.Errorf(codes.InvalidArgument, "Wrong input: Not existing vector name error: %s", name)
	}
	if req.SparseIndices != nil {
		return nil, unimplemented("sparse vectors")
	}
	if req.GetLimit() == 0 {
		return nil, status.Error(codes.InvalidArgument, "Wrong input: limit must be 1 or larger")
	}
	ps.s.mu.RLock()
	defer ps.s.mu.RUnlock()
	c, err := ps.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	hits, err := c.search(req.GetVector(), req.GetFilter(), int(req.GetLimit()), int(req.GetOffset()), req.ScoreThreshold,
		req.GetWithPayload(), req.WithVectors)
	if err != nil {
		return nil, err
	}
	return &qd.SearchResponse{Result: hits, Time: since(start)}, nil
}

// Query supports a nearest-neighbour query with a dense vector, or no query (points in id
// order), each with filter, limit, offset, score threshold, payload and vector selectors.
func (ps *pointsService) Query(_ context.Context, req *qd.QueryPoints) (*qd.QueryResponse, error) {
	start := time.Now()
	switch {
	case len(req.GetPrefetch()) > 0:
		return nil, unimplemented("prefetch queries")
	case req.LookupFrom != nil:
		return nil, unimplemented("lookup_from queries")
	case req.GetUsing() != "":
		return nil, status.Errorf(codes.InvalidArgument, "Wrong input: Not existing vector name error: %s", req.GetUsing())
	}
	limit, offset := 10, 0
	if req.Limit != nil {
		limit = int(req.GetLimit())
	}
	if req.Offset != nil {
		offset = int(req.GetOffset())
	}
	ps.s.mu.RLock()
	defer ps.s.mu.RUnlock()
	c, err := ps.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	var hits []*qd.ScoredPoint
	switch q := req.GetQuery().GetVariant().(type) {
	case nil:
		hits, err = c.byID(req.GetFilter(), limit, offset, req.GetWithPayload(), req.WithVectors)
	case *qd.Query_Nearest:
		dense := q.Nearest.GetDense()
		if dense == nil {
			return nil, unimplemented("nearest queries other than a dense vector")
		}
		hits, err = c.search(dense.GetData(), req.GetFilter(), limit, offset, req.ScoreThreshold, req.GetWithPayload(), req.WithVectors)
	default:
		return nil, unimplemented("query kinds other than nearest")
	}
	if err != nil {
		return nil, err
	}
	return &qd.QueryResponse{Result: hits, Time: since(start)}, nil
}

// search scores every point that passes the filter. Cosine and Dot rank by descending
// score, Euclid and Manhattan by ascending distance; equal scores keep id order.
func (c *collection) search(query []float32, filter *qd.Filter, limit, offset int, threshold *float32,
	withPayload *qd.WithPayloadSelector, withVectors *qd.WithVectorsSelector) ([]*qd.ScoredPoint, error) {
	if err := validateFilter(filter); err != nil {
		return nil, err
	}
	q, err := c.prepareVector(query)
	if err != nil {
		return nil, err
	}
	ascending := c.distance == qd.Distance_Euclid || c.distance == qd.Distance_Manhattan
	type hit struct {
		p     *point
		score float32
	}
	var hits []hit
	for _, k := range c.keys() {
		p := c.points[k]
		if !matchFilter(filter, p) {
			continue
		}
		s := score(c.distance, q, p.vector)
		if threshold != nil && ((ascending && s > *threshold) || (!ascending && s < *threshold)) {
			continue
		}
		hits = append(hits, hit{p, s})
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if ascending {
			return cmp.Compare(a.score, b.score)
		}
		return cmp.Compare(b.score, a.score)
	})
	var out []*qd.ScoredPoint
	for i := offset; i < len(hits) && len(out) < limit; i++ {
		r := retrievedDefault(hits[i].p, withPayload, false, withVectors)
		out = append(out, &qd.ScoredPoint{Id: r.Id, Payload: r.Payload, Vectors: r.Vectors, Score: hits[i].score})
	}
	return out, nil
}

func (c *collection) byID(filter *qd.Filter, limit, offset int, withPayload *qd.WithPayloadSelector, withVectors *qd.WithVectorsSelector) ([]*qd.ScoredPoint, error) {
	if err := validateFilter(filter); err != nil {
		return nil, err
	}
	var out []*qd.ScoredPoint
	skipped := 0
	for _, k := range c.keys() {
		p := c.points[k]
		if !matchFilter(filter, p) {
			continue
		}
		if skipped < offset {
			skipped++
			continue
		}
		if len(out) == limit {
			break
		}
		r := retrievedDefault(p, withPayload, false, withVectors)
		out = append(out, &qd.ScoredPoint{Id: r.Id, Payload: r.Payload, Vectors: r.Vectors})
	}
	return out, nil
}

func score(d qd.Distance, q, v []float32) float32 {
	var s float64
	switch d {
	case qd.Distance_Euclid:
		for i := range q {
			x := float64(q[i]) - float64(v[i])
			s += x * x
		}
		return float32(math.Sqrt(s))
	case qd.Distance_Manhattan:
		for i := range q {
			s += math.Abs(float64(q[i]) - float64(v[i]))
		}
		return float32(s)
	}
	// Cosine vectors are stored normalized and the query is normalized: cosine = dot.
	for i := range q {
		s += float64(q[i]) * float64(v[i])
	}
	return float32(s)
}

// upsert validates every point first, so a bad point rejects the whole request.
func (c *collection) upsert(in []*qd.PointStruct) error {
	pts := make([]*point, 0, len(in))
	for _, ps := range in {
		k, err := pointKey(ps.GetId())
		if err != nil {
			return err
		}
		raw, err := denseOf(ps.GetVectors())
		if err != nil {
			return err
		}
		vec, err := c.prepareVector(raw)
		if err != nil {
			return err
		}
		pts = append(pts, &point{key: k, id: canonicalID(ps.GetId()), vector: vec, payload: copyPayload(ps.GetPayload())})
	}
	for _, p := range pts {
		c.put(p.key, p)
	}
	return nil
}

func (c *collection) deletePoints(sel *qd.PointsSelector) error {
	keys, _, err := c.selectKeys(sel)
	if err != nil {
		return err
	}
	for _, k := range keys {
		c.remove(k)
	}
	return nil
}

// setPayload merges payload into the selected points' payloads, or replaces them when
// overwrite is set. Selecting by id a point that does not exist is an error, as in Qdrant.
func (c *collection) setPayload(payload map[string]*qd.Value, sel *qd.PointsSelector, key *string, overwrite bool) error {
	if key != nil {
		return unimplemented("payload updates at a nested key")
	}
	keys, err := c.selectExisting(sel)
	if err != nil {
		return err
	}
	for _, k := range keys {
		old := c.points[k]
		next := &point{key: old.key, id: old.id, vector: old.vector}
		if overwrite {
			next.payload = copyPayload(payload)
		} else {
			next.payload = copyPayload(old.payload)
			for f, v := range copyPayload(payload) {
				next.payload[f] = v
			}
		}
		c.points[k] = next
	}
	return nil
}

func (c *collection) deletePayload(fields []string, sel *qd.PointsSelector) error {
	keys, err := c.selectExisting(sel)
	if err != nil {
		return err
	}
	for _, k := range keys {
		old := c.points[k]
		next := &point{key: old.key, id: old.id, vector: old.vector, payload: copyPayload(old.payload)}
		for _, f := range fields {
			delete(next.payload, f)
		}
		c.points[k] = next
	}
	return nil
}

func (c *collection) selectExisting(sel *qd.PointsSelector) ([]string, error) {
	keys, byID, err := c.selectKeys(sel)
	if err != nil {
		return nil, err
	}
	if byID {
		for i, k := range keys {
			if _, ok := c.points[k]; !ok {
				return nil, status.Errorf(codes.NotFound, "Not found: No point with id %v found", sel.GetPoints().GetIds()[i])
			}
		}
	}
	return keys, nil
}

// selectKeys returns the keys named by a selector: the listed ids (existing or not), or the
// points that pass the filter.
func (c *collection) selectKeys(sel *qd.PointsSelector) (keys []string, byID bool, err error) {
	switch s := sel.GetPointsSelectorOneOf().(type) {
	case *qd.PointsSelector_Points:
		for _, id := range s.Points.GetIds() {
			k, err := pointKey(id)
			if err != nil {
				return nil, true, err
			}
			keys = append(keys, k)
		}
		return keys, true, nil
	case *qd.PointsSelector_Filter:
		if err := validateFilter(s.Filter); err != nil {
			return nil, false, err
		}
		for _, k := range c.keys() {
			if matchFilter(s.Filter, c.points[k]) {
				keys = append(keys, k)
			}
		}
		return keys, false, nil
	}
	return nil, false, status.Error(codes.InvalidArgument, "Wrong input: points selector is missing")
}

func denseOf(v *qd.Vectors) ([]float32, error) {
	switch o := v.GetVectorsOptions().(type) {
	case *qd.Vectors_Vector:
		return denseVector(o.Vector)
	case *qd.Vectors_Vectors:
		named := o.Vectors.GetVectors()
		if vec, ok := named[""]; ok && len(named) == 1 {
			return denseVector(vec)
		}
		return nil, unimplemented("named vectors")
	}
	return nil, status.Error(codes.InvalidArgument, "Wrong input: Vector dimension error: point has no vector")
}

func denseVector(v *qd.Vector) ([]float32, error) {
	if d := v.GetDense(); d != nil {
		return d.GetData(), nil
	}
	//lint:ignore SA1019 clients before 1.13 send sparse and multi vectors in deprecated fields
	if v.GetVector() != nil || v.Indices != nil || v.VectorsCount != nil {
		return nil, unimplemented("vectors other than dense")
	}
	//lint:ignore SA1019 clients before 1.13 send dense vectors in the deprecated data field
	return v.GetData(), nil
}

func checkUpsertMode(filter *qd.Filter, mode *qd.UpdateMode) error {
	if filter != nil {
		return unimplemented("conditional upserts (update_filter)")
	}
	if mode != nil && *mode != qd.UpdateMode_Upsert {
		return unimplemented("update modes other than upsert")
	}
	return nil
}

// retrieved renders a point for Get and Scroll, whose payload is returned unless disabled.
func retrieved(p *point, wp *qd.WithPayloadSelector, wv *qd.WithVectorsSelector) *qd.RetrievedPoint {
	return retrievedDefault(p, wp, true, wv)
}

func retrievedDefault(p *point, wp *qd.WithPayloadSelector, payloadByDefault bool, wv *qd.WithVectorsSelector) *qd.RetrievedPoint {
	r := &qd.RetrievedPoint{Id: canonicalID(p.id), Payload: map[string]*qd.Value{}}
	withPayload := payloadByDefault
	var include, exclude []string
	switch s := wp.GetSelectorOptions().(type) {
	case *qd.WithPayloadSelector_Enable:
		withPayload = s.Enable
	case *qd.WithPayloadSelector_Include:
		withPayload, include = true, s.Include.GetFields()
	case *qd.WithPayloadSelector_Exclude:
		withPayload, exclude = true, s.Exclude.GetFields()
	}
	if withPayload {
		for k, v := range copyPayload(p.payload) {
			if (include == nil || slices.Contains(include, k)) && !slices.Contains(exclude, k) {
				r.Payload[k] = v
			}
		}
	}
	withVectors := false
	switch s := wv.GetSelectorOptions().(type) {
	case *qd.WithVectorsSelector_Enable:
		withVectors = s.Enable
	case *qd.WithVectorsSelector_Include:
		withVectors = len(s.Include.GetNames()) > 0
	}
	if withVectors {
		r.Vectors = &qd.VectorsOutput{VectorsOptions: &qd.VectorsOutput_Vector{Vector: &qd.VectorOutput{
			Vector: &qd.VectorOutput_Dense{Dense: &qd.DenseVector{Data: slices.Clone(p.vector)}},
		}}}
	}
	return r
}

// checkPoints rejects what Qdrant cannot store: payload values with no JSON form.
func checkPoints(pts []*qd.PointStruct) error {
	for _, p := range pts {
		if err := checkPayload(p.GetPayload()); err != nil {
			return err
		}
	}
	return nil
}

// checkPayload rejects NaN and infinite numbers anywhere in a payload, as Qdrant does: it
// stores payloads as JSON, which has no such numbers.
func checkPayload(p map[string]*qd.Value) error {
	for _, v := range p {
		if err := checkValue(v); err != nil {
			return err
		}
	}
	return nil
}

func checkValue(v *qd.Value) error {
	switch x := v.GetKind().(type) {
	case *qd.Value_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return status.Error(codes.InvalidArgument, "cannot convert to json number")
		}
	case *qd.Value_ListValue:
		for _, e := range x.ListValue.GetValues() {
			if err := checkValue(e); err != nil {
				return err
			}
		}
	case *qd.Value_StructValue:
		return checkPayload(x.StructValue.GetFields())
	}
	return nil
}

func opResponse(c *collection, start time.Time) *qd.PointsOperationResponse {
	return &qd.PointsOperationResponse{
		Result: &qd.UpdateResult{OperationId: ptr(c.nextOp()), Status: qd.UpdateStatus_Completed},
		Time:   since(start),
	}
}

func ptr[T any](v T) *T { return &v }
