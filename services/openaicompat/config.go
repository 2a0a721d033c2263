package openaicompat

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/tgflow/tgflow/internal/config"
)

// Config is the configuration of an OpenAI-compatible provider, from TGFLOW_OPENAI_*.
type Config struct {
	BaseURL    string        `env:"TGFLOW_OPENAI_BASE_URL" help:"base URL of an OpenAI-compatible API (OpenAI, OpenRouter, Ollama, vLLM, a GigaChat proxy), e.g. https://api.openai.com/v1"`
	APIKey     config.Secret `env:"TGFLOW_OPENAI_API_KEY" help:"API key sent as a bearer token (empty for servers that need none, e.g. Ollama)"`
	ChatModel  string        `env:"TGFLOW_OPENAI_CHAT_MODEL" help:"chat model for tags, topics and image descriptions"`
	EmbedModel string        `env:"TGFLOW_OPENAI_EMBED_MODEL" help:"embeddings model (with TGFLOW_EMBEDDER=openai)"`
	Timeout    time.Duration `env:"TGFLOW_OPENAI_TIMEOUT" envDefault:"60s" help:"longest wait for one provider call, retries included"`
	MaxRetries int           `env:"TGFLOW_OPENAI_MAX_RETRIES" envDefault:"3" help:"retries of a call answered 408/409/429/5xx or not answered, honouring Retry-After"`
	// MaxConcurrency bounds the calls in flight across the process.
	MaxConcurrency int     `env:"TGFLOW_OPENAI_MAX_CONCURRENCY" envDefault:"4" help:"provider calls in flight at once, at most"`
	RPS            float64 `env:"TGFLOW_OPENAI_RPS" envDefault:"5" help:"provider calls per second, at most"`
	DailyTokens    int64   `env:"TGFLOW_OPENAI_DAILY_TOKENS" envDefault:"0" help:"tokens per UTC day, at most (0: no budget); past it calls wait for the next day"`
}

// Configured reports whether a provider is set at all.
func (c *Config) Configured() bool { return c.BaseURL != "" }

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("env: TGFLOW_OPENAI_BASE_URL: %q is not an http(s) URL", c.BaseURL))
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("env: TGFLOW_OPENAI_TIMEOUT must be positive"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, errors.New("env: TGFLOW_OPENAI_MAX_RETRIES must not be negative"))
	}
	if c.MaxConcurrency <= 0 {
		errs = append(errs, errors.New("env: TGFLOW_OPENAI_MAX_CONCURRENCY must be positive"))
	}
	if c.RPS <= 0 {
		errs = append(errs, errors.New("env: TGFLOW_OPENAI_RPS must be positive"))
	}
	if c.DailyTokens < 0 {
		errs = append(errs, errors.New("env: TGFLOW_OPENAI_DAILY_TOKENS must not be negative"))
	}
	return errors.Join(errs...)
}
