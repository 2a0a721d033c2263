package qdranttest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Version is what HealthCheck reports: the Qdrant release whose API this server imitates
// (the client's minor version, so its compatibility check stays quiet).
const Version = "1.17.1"

type qdrantService struct {
	qd.UnimplementedQdrantServer
}

func (qdrantService) HealthCheck(context.Context, *qd.HealthCheckRequest) (*qd.HealthCheckReply, error) {
	return &qd.HealthCheckReply{Title: "qdrant - vector search engine (tgflow qdranttest)", Version: Version}, nil
}

type collectionsService struct {
	qd.UnimplementedCollectionsServer
	s *store
}

func (cs *collectionsService) Create(_ context.Context, req *qd.CreateCollection) (*qd.CollectionOperationResponse, error) {
	start := time.Now()
	name := req.GetCollectionName()
	if err := validName(name); err != nil {
		return nil, err
	}
	params := req.GetVectorsConfig().GetParams()
	switch {
	case req.GetVectorsConfig().GetParamsMap() != nil:
		return nil, status.Error(codes.Unimplemented, "qdranttest: named vectors are not supported")
	case req.GetSparseVectorsConfig() != nil:
		return nil, status.Error(codes.Unimplemented, "qdranttest: sparse vectors are not supported")
	case params == nil:
		return nil, status.Error(codes.Unimplemented, "qdranttest: a collection needs one unnamed dense vector")
	case params.GetSize() == 0:
		return nil, status.Error(codes.InvalidArgument, "Wrong input: vector size must be greater than 0")
	case params.GetMultivectorConfig() != nil:
		return nil, status.Error(codes.Unimplemented, "qdranttest: multivectors are not supported")
	}
	switch params.GetDistance() {
	case qd.Distance_Cosine, qd.Distance_Dot, qd.Distance_Euclid, qd.Distance_Manhattan:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "Wrong input: unknown distance %v", params.GetDistance())
	}
	cs.s.mu.Lock()
	defer cs.s.mu.Unlock()
	if _, ok := cs.s.collections[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Wrong input: Collection `%s` already exists!", name)
	}
	if _, ok := cs.s.aliases[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Wrong input: Alias with name `%s` already exists!", name)
	}
	one := uint32(1)
	cs.s.collections[name] = &collection{
		name:     name,
		size:     int(params.GetSize()),
		distance: params.GetDistance(),
		config: &qd.CollectionConfig{
			Params: &qd.CollectionParams{
				ShardNumber:            1,
				OnDiskPayload:          req.GetOnDiskPayload(),
				VectorsConfig:          qd.NewVectorsConfig(&qd.VectorParams{Size: params.GetSize(), Distance: params.GetDistance()}),
				ReplicationFactor:      &one,
				WriteConsistencyFactor: &one,
			},
			HnswConfig:      &qd.HnswConfigDiff{},
			OptimizerConfig: &qd.OptimizersConfigDiff{},
			WalConfig:       &qd.WalConfigDiff{},
		},
		points: map[string]*point{},
		schema: map[string]*qd.PayloadSchemaInfo{},
	}
	return &qd.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

func (cs *collectionsService) Get(_ context.Context, req *qd.GetCollectionInfoRequest) (*qd.GetCollectionInfoResponse, error) {
	start := time.Now()
	cs.s.mu.RLock()
	defer cs.s.mu.RUnlock()
	c, err := cs.s.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	n := uint64(len(c.points))
	indexed := uint64(0)
	schema := map[string]*qd.PayloadSchemaInfo{}
	for field, info := range c.schema {
		cnt := uint64(0)
		for _, p := range c.points {
			if len(lookup(p.payload, field)) > 0 {
				cnt++
			}
		}
		schema[field] = &qd.PayloadSchemaInfo{DataType: info.GetDataType(), Params: info.Params, Points: &cnt}
	}
	return &qd.GetCollectionInfoResponse{Time: since(start), Result: &qd.CollectionInfo{
		Status:              qd.CollectionStatus_Green,
		OptimizerStatus:     &qd.OptimizerStatus{Ok: true},
		SegmentsCount:       1,
		Config:              c.config,
		PayloadSchema:       schema,
		PointsCount:         &n,
		IndexedVectorsCount: &indexed,
	}}, nil
}

func (cs *collectionsService) List(context.Context, *qd.ListCollectionsRequest) (*qd.ListCollectionsResponse, error) {
	start := time.Now()
	cs.s.mu.RLock()
	defer cs.s.mu.RUnlock()
	resp := &qd.ListCollectionsResponse{}
	for _, name := range slices.Sorted(maps.Keys(cs.s.collections)) {
		resp.Collections = append(resp.Collections, &qd.CollectionDescription{Name: name})
	}
	resp.Time = since(start)
	return resp, nil
}

// Delete drops a collection and every alias pointing to it. Deleting a missing collection
// reports false, as Qdrant does.
func (cs *collectionsService) Delete(_ context.Context, req *qd.DeleteCollection) (*qd.CollectionOperationResponse, error) {
	start := time.Now()
	cs.s.mu.Lock()
	defer cs.s.mu.Unlock()
	name := req.GetCollectionName()
	if _, ok := cs.s.collections[name]; !ok {
		return &qd.CollectionOperationResponse{Result: false, Time: since(start)}, nil
	}
	delete(cs.s.collections, name)
	for alias, target := range cs.s.aliases {
		if target == name {
			delete(cs.s.aliases, alias)
		}
	}
	return &qd.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

func (cs *collectionsService) CollectionExists(_ context.Context, req *qd.CollectionExistsRequest) (*qd.CollectionExistsResponse, error) {
	start := time.Now()
	cs.s.mu.RLock()
	defer cs.s.mu.RUnlock()
	_, ok := cs.s.collections[req.GetCollectionName()]
	return &qd.CollectionExistsResponse{Result: &qd.CollectionExists{Exists: ok}, Time: since(start)}, nil
}

// UpdateAliases applies the actions in order under the write lock, so readers see the
// aliases before the request or after it, never in between. As in Qdrant, the request is not
// a transaction: when an action fails, the actions before it stay applied (a failed
// "delete + create" leaves the alias deleted) and the error is returned.
func (cs *collectionsService) UpdateAliases(_ context.Context, req *qd.ChangeAliases) (*qd.CollectionOperationResponse, error) {
	start := time.Now()
	cs.s.mu.Lock()
	defer cs.s.mu.Unlock()
	for _, action := range req.GetActions() {
		if err := cs.s.applyAlias(action); err != nil {
			return nil, err
		}
	}
	return &qd.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

// applyAlias applies one alias action. The caller holds the write lock.
func (s *store) applyAlias(action *qd.AliasOperations) error {
	switch a := action.GetAction().(type) {
	case *qd.AliasOperations_CreateAlias:
		// Creating an alias that exists points it at the new collection, as in Qdrant.
		coll, alias := a.CreateAlias.GetCollectionName(), a.CreateAlias.GetAliasName()
		if err := validName(alias); err != nil {
			return err
		}
		if _, ok := s.collections[coll]; !ok {
			return status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", coll)
		}
		if _, ok := s.collections[alias]; ok {
			return status.Errorf(codes.AlreadyExists, "Wrong input: Collection `%s` already exists!", alias)
		}
		s.aliases[alias] = coll
	case *qd.AliasOperations_DeleteAlias:
		// Deleting a missing alias succeeds, as in Qdrant.
		delete(s.aliases, a.DeleteAlias.GetAliasName())
	case *qd.AliasOperations_RenameAlias:
		old, nw := a.RenameAlias.GetOldAliasName(), a.RenameAlias.GetNewAliasName()
		target, ok := s.aliases[old]
		if !ok {
			return status.Errorf(codes.NotFound, "Not found: Alias %s does not exists!", old)
		}
		if err := validName(nw); err != nil {
			return err
		}
		delete(s.aliases, old)
		s.aliases[nw] = target
	default:
		return status.Error(codes.InvalidArgument, "Wrong input: empty alias action")
	}
	return nil
}

func (cs *collectionsService) ListAliases(context.Context, *qd.ListAliasesRequest) (*qd.ListAliasesResponse, error) {
	start := time.Now()
	cs.s.mu.RLock()
	defer cs.s.mu.RUnlock()
	resp := &qd.ListAliasesResponse{}
	for _, alias := range slices.Sorted(maps.Keys(cs.s.aliases)) {
		resp.Aliases = append(resp.Aliases, &qd.AliasDescription{AliasName: alias, CollectionName: cs.s.aliases[alias]})
	}
	resp.Time = since(start)
	return resp, nil
}

func (cs *collectionsService) ListCollectionAliases(_ context.Context, req *qd.ListCollectionAliasesRequest) (*qd.ListAliasesResponse, error) {
	start := time.Now()
	cs.s.mu.RLock()
	defer cs.s.mu.RUnlock()
	name := req.GetCollectionName()
	if _, ok := cs.s.collections[name]; !ok {
		return nil, status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", name)
	}
	resp := &qd.ListAliasesResponse{}
	for _, alias := range slices.Sorted(maps.Keys(cs.s.aliases)) {
		if cs.s.aliases[alias] == name {
			resp.Aliases = append(resp.Aliases, &qd.AliasDescription{AliasName: alias, CollectionName: name})
		}
	}
	resp.Time = since(start)
	return resp, nil
}

// validName applies Qdrant's collection/alias name rules that matter here.
func validName(name string) error {
	if name == "" || len(name) > 255 || strings.ContainsAny(name, `<>:"/\|?*`+"\x00") {
		return status.Errorf(codes.InvalidArgument, "Wrong input: invalid collection or alias name %q", name)
	}
	return nil
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
