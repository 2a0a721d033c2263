package projsvc

import (
	"errors"
	"fmt"

	"github.com/tgflow/tgflow/internal/config"
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

// QdrantConfig configures the Qdrant projection.
type QdrantConfig struct {
	Common
	Addr  string `env:"TGFLOW_QDRANT_ADDR" help:"Qdrant gRPC host:port, e.g. localhost:6334"`
	Alias string `env:"TGFLOW_QDRANT_ALIAS" envDefault:"posts" help:"alias readers query; it points at posts_v<N>"`
	Dim   int    `env:"TGFLOW_EMBED_DIM" envDefault:"256" help:"embedding dimension (must match the embedder)"`
	Model string `env:"TGFLOW_EMBED_MODEL" help:"when set, embeddings of another model are skipped instead of failing"`
}

// Validate checks QdrantConfig.
func (c *QdrantConfig) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.Dim < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_EMBED_DIM: %d must be positive", c.Dim))
	}
	return errors.Join(errs...)
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
