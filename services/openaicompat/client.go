package openaicompat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"golang.org/x/time/rate"
)

// Failure classes; see the package documentation.
var (
	ErrUnavailable   = errors.New("provider unavailable")
	ErrInvalidAnswer = errors.New("provider answer invalid")
	ErrRejected      = errors.New("provider rejected the request")
	ErrNotConfigured = errors.New("provider not configured")
)

// UnavailableError is an ErrUnavailable that knows when trying again makes sense.
type UnavailableError struct {
	// RetryAt is when the provider may answer again (zero: unknown).
	RetryAt time.Time
	Reason  string
}

func (e *UnavailableError) Error() string {
	if e.RetryAt.IsZero() {
		return fmt.Sprintf("%s: %s", ErrUnavailable, e.Reason)
	}
	return fmt.Sprintf("%s: %s (until %s)", ErrUnavailable, e.Reason, e.RetryAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Options are a client's dependencies beyond its configuration.
type Options struct {
	// Name labels the provider in metrics and facts (default "openai").
	Name string
	// HTTPClient is the transport (default: a client with sane dial and TLS timeouts).
	HTTPClient *http.Client
	// Metrics records calls; nil records nothing.
	Metrics *Metrics
	// Now is the clock of the daily budget (default time.Now).
	Now func() time.Time
}

// Client calls one OpenAI-compatible API.
type Client struct {
	cfg     Config
	name    string
	api     openai.Client
	sem     chan struct{}
	limit   *rate.Limiter
	metrics *Metrics
	now     func() time.Time

	mu      sync.Mutex
	day     string // UTC date the budget counts
	spent   int64
	dayDone time.Time
}

// New builds a client. cfg must be valid and configured.
func New(cfg Config, opts Options) (*Client, error) {
	if !cfg.Configured() {
		return nil, ErrNotConfigured
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "openai"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConnsPerHost:   cfg.MaxConcurrency,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	ropts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithHTTPClient(opts.HTTPClient),
		option.WithMaxRetries(cfg.MaxRetries),
		// A Retry-After longer than the call's own timeout is not slept through: the call
		// fails as unavailable and the stage's redelivery delay takes over.
		option.WithMaxRetryDelay(cfg.Timeout),
	}
	if cfg.APIKey != "" {
		ropts = append(ropts, option.WithAPIKey(cfg.APIKey.Reveal()))
	} else {
		// The SDK reads OPENAI_API_KEY from the environment when no key is given; tgflow's
		// configuration is the only source, so an empty key stays empty.
		ropts = append(ropts, option.WithHeaderDel("Authorization"))
	}
	burst := int(cfg.RPS)
	if burst < 1 {
		burst = 1
	}
	return &Client{
		cfg:     cfg,
		name:    opts.Name,
		api:     openai.NewClient(ropts...),
		sem:     make(chan struct{}, cfg.MaxConcurrency),
		limit:   rate.NewLimiter(rate.Limit(cfg.RPS), burst),
		metrics: opts.Metrics,
		now:     opts.Now,
	}, nil
}

// Name is the provider's label.
func (c *Client) Name() string { return c.name }

// call runs one provider call under the concurrency bound, the rate limit, the budget and
// the timeout, and classifies its error. fn returns the tokens the call used.
func (c *Client) call(ctx context.Context, op string, fn func(ctx context.Context) (int64, error)) error {
	if err := c.checkBudget(); err != nil {
		c.metrics.observe(c.name, op, outcomeBudget, 0)
		return err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	if err := c.limit.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnavailableError{Reason: "rate limit: " + err.Error()}
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	tokens, err := fn(cctx)
	if err == nil {
		c.spend(tokens)
		c.metrics.tokens(c.name, tokens)
		c.metrics.observe(c.name, op, outcomeOK, time.Since(start))
		return nil
	}
	if ctx.Err() != nil { // the caller gave up (shutdown): not the provider's fault
		return ctx.Err()
	}
	err = classify(err)
	c.metrics.observe(c.name, op, outcomeOf(err), time.Since(start))
	return err
}

// classify maps an SDK or transport error to the package's classes, without the body.
func classify(err error) error {
	if errors.Is(err, ErrInvalidAnswer) || errors.Is(err, ErrRejected) || errors.Is(err, ErrUnavailable) {
		return err
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		status := apiErr.StatusCode
		switch {
		case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge, status == http.StatusUnprocessableEntity:
			return fmt.Errorf("%w: HTTP %d %s", ErrRejected, status, apiErr.Code)
		default:
			// 401/403 (credentials), 404 (model or path), 408/409/429, 5xx: nothing about
			// this input; the provider is unusable until someone or something changes.
			return &UnavailableError{Reason: fmt.Sprintf("HTTP %d %s", status, apiErr.Code)}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &UnavailableError{Reason: "timed out"}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &UnavailableError{Reason: "network: " + ne.Error()}
	}
	return &UnavailableError{Reason: err.Error()}
}

// checkBudget fails while the day's token budget is spent.
func (c *Client) checkBudget() error {
	if c.cfg.DailyTokens <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollDay()
	if c.spent >= c.cfg.DailyTokens {
		return &UnavailableError{RetryAt: c.dayDone, Reason: fmt.Sprintf("daily token budget of %d spent", c.cfg.DailyTokens)}
	}
	return nil
}

func (c *Client) spend(tokens int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollDay()
	c.spent += tokens
}

// rollDay starts a new budget at UTC midnight. c.mu is held.
func (c *Client) rollDay() {
	now := c.now().UTC()
	if d := now.Format(time.DateOnly); d != c.day {
		c.day, c.spent = d, 0
		y, m, dd := now.Date()
		c.dayDone = time.Date(y, m, dd+1, 0, 0, 0, 0, time.UTC)
	}
}

// Spent is the tokens counted against today's budget.
func (c *Client) Spent() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollDay()
	return c.spent
}
