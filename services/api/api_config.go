package api

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the API server's configuration.
type Config struct {
	Addr    string        `env:"TGFLOW_API_ADDR" envDefault:"127.0.0.1:8080" help:"address tgflow api listens on: the JSON API under /api, the web page at /"`
	Rate    float64       `env:"TGFLOW_API_RATE" envDefault:"10" help:"requests per second each client (remote IP) may make, on average"`
	Burst   int           `env:"TGFLOW_API_BURST" envDefault:"20" help:"requests a client may make at once above the rate"`
	Timeout time.Duration `env:"TGFLOW_API_TIMEOUT" envDefault:"15s" help:"longest a request may take (backends included)"`
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("env: TGFLOW_API_ADDR: %q is not host:port: %w", c.Addr, err))
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_API_RATE: %v is not positive", c.Rate))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_API_BURST: %d is below 1", c.Burst))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_API_TIMEOUT: %v is not positive", c.Timeout))
	}
	return errors.Join(errs...)
}
