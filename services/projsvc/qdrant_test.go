package projsvc_test

import (
	"testing"

	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

func qdrantAddr(t *testing.T) (string, bool) { return qdranttest.Addr(t) }
