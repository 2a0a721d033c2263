// Package chaintest holds the tests and benchmarks that run several stages together on
// an embedded NATS server: the bundled sample through vision and albums, the vision-retag
// chain into the Postgres and Qdrant read models, and the throughput of the text chain
// parsed → tagged → enriched → embedded. It has no code of its own beyond test helpers.
package chaintest
