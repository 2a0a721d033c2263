// Package openaicompat is tgflow's client for any OpenAI-compatible HTTP API (OpenAI,
// OpenRouter, Ollama, vLLM, GigaChat behind its OpenAI-compatible proxy): chat completions
// whose answer must be JSON valid against a schema (tags, topics, image descriptions) and
// embeddings. It is built on github.com/openai/openai-go/v3, whose retries honour
// Retry-After; on top of it the client bounds concurrency, rate and a daily token budget,
// validates every structured answer, and classifies every failure:
//
//   - ErrUnavailable: the provider cannot answer now (down, timing out, 429/5xx after the
//     retries, credentials refused, the daily budget spent). Callers retry later; a stage
//     delays redelivery and never dead-letters for it.
//   - ErrInvalidAnswer: the provider answered, but not with what was asked (not JSON, not
//     valid against the schema, empty, a refusal). Callers fall back to their local result.
//   - ErrRejected: the provider refused this request as such (400, 413, 422): retrying the
//     same input cannot help.
//
// Errors never carry the API key or a response body.
package openaicompat
