package ingest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest/telegram"
)

// Telegram is what ingest needs from Telegram; *telegram.Client implements it.
type Telegram interface {
	// Run connects and calls f; it returns when f returns or ctx ends.
	Run(ctx context.Context, f func(ctx context.Context) error) error
	Resolve(ctx context.Context, username string) (telegram.Channel, error)
	LookupChannel(ctx context.Context, ch telegram.Channel) (telegram.Channel, error)
	History(ctx context.Context, ch telegram.Channel, q telegram.HistoryQuery) ([]telegram.Message, error)
	Messages(ctx context.Context, ch telegram.Channel, ids []int64) ([]telegram.Message, error)
	StoreMedia(ctx context.Context, ch telegram.Channel, m *telegram.Message) (telegram.MediaResult, error)
}

var _ Telegram = (*telegram.Client)(nil)

// ErrTelegramAuth stops ingest: the Telegram session is unusable (revoked, deactivated,
// not logged in, wrong session key). Retrying cannot help until someone logs in again.
var ErrTelegramAuth = services.NeedsOperator("ingest: the Telegram session is unusable; run `tgflow login`")

// RunReport is what one scheduler run did: a typed result per channel read.
type RunReport struct {
	// Owner is the lease owner that ran it (WithOwner, or a random token per process).
	Owner      string
	StartedAt  time.Time
	FinishedAt time.Time
	// BackfillOnly is set for a run started by a new subscription: it reads only channels
	// just subscribed (their backfill, or their cursor when they were read before).
	BackfillOnly bool
	Channels     []ChannelReport
	// Err is the error that ended the run early (ErrTelegramAuth, shutdown, NATS down).
	Err error
}

// ChannelReport is the outcome of one channel in a run: exactly one of Synced, Failed and
// Deferred is set.
type ChannelReport struct {
	ChannelID events.ChannelID
	Username  string
	Synced    *events.ChannelSynced
	Failed    *events.ChannelFailed
	// Deferred says why the channel was not read in this run (the resolve budget is spent).
	Deferred string
}

// Option tunes a Service (mostly for tests).
type Option func(*Service)

// WithClock replaces the clock of the scheduler's decisions (backoff, backfill depth,
// recheck and album deadlines). The lease uses the real clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRunHook calls fn after every scheduler run of this process.
func WithRunHook(fn func(RunReport)) Option { return func(s *Service) { s.onRun = fn } }

// WithOwner names this process in the scheduler lease (default: a random token).
func WithOwner(owner string) Option { return func(s *Service) { s.lease.owner = owner } }

// WithCursorStore wraps the ingest-cursors bucket (cursors, album progress, recheck
// snapshots) as the service uses it: tests inject failures with it.
func WithCursorStore(wrap func(jetstream.KeyValue) jetstream.KeyValue) Option {
	return func(s *Service) {
		s.state = wrap(s.state)
		s.cur.kv = s.state
	}
}

// Service is the ingest service: the stage that keeps the channel registry from
// channels.subscribed/unsubscribed, and the scheduler that reads Telegram.
type Service struct {
	cfg     Config
	tg      Telegram
	js      jetstream.JetStream
	log     *slog.Logger
	reg     *registry
	cur     *cursors
	state   jetstream.KeyValue
	pub     *publisher
	lease   *lease
	stage   *worker.Stage
	now     func() time.Time
	onRun   func(RunReport)
	full    chan struct{}
	refill  chan struct{}
	metrics *metrics
}

// New builds the service over an already built Telegram client.
func New(ctx context.Context, cfg Config, d services.Deps, tg Telegram, opts ...Option) (*Service, error) {
	if d.JS == nil {
		return nil, errors.New("ingest: nil JetStream")
	}
	if tg == nil {
		return nil, errors.New("ingest: nil Telegram client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("service", "ingest")
	channelsKV, err := d.JS.KeyValue(ctx, topology.BucketChannels)
	if err != nil {
		return nil, fmt.Errorf("ingest: bucket %s: %w", topology.BucketChannels, err)
	}
	cursorsKV, err := d.JS.KeyValue(ctx, topology.BucketCursors)
	if err != nil {
		return nil, fmt.Errorf("ingest: bucket %s: %w", topology.BucketCursors, err)
	}
	leasesKV, err := d.JS.KeyValue(ctx, topology.BucketLeases)
	if err != nil {
		return nil, fmt.Errorf("ingest: bucket %s: %w", topology.BucketLeases, err)
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:     cfg,
		tg:      tg,
		js:      d.JS,
		log:     log,
		reg:     &registry{kv: channelsKV},
		cur:     &cursors{kv: cursorsKV},
		state:   cursorsKV,
		pub:     &publisher{js: d.JS, reg: events.Default},
		lease:   &lease{kv: leasesKV, owner: rand.Text(), ttl: cfg.LeaseTTL, now: time.Now},
		now:     func() time.Time { return time.Now().UTC() },
		full:    make(chan struct{}, 1),
		refill:  make(chan struct{}, 1),
		metrics: m,
	}
	for _, o := range opts {
		o(s)
	}
	c, ok := topology.LookupConsumer(topology.ConsumerIngest)
	if !ok {
		return nil, errors.New("ingest: consumer ingest is not declared")
	}
	router := worker.NewRouter()
	worker.On(router, s.onSubscribed)
	worker.On(router, s.onUnsubscribed)
	s.stage, err = worker.NewStage(d.JS, worker.Config{
		Consumer: c.Config(),
		Producer: events.ProducerIngest,
		Batch:    32,
		Metrics:  d.Metrics,
		Logger:   log,
	}, router)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return s, nil
}

// Trigger asks the scheduler for a full run now (when this process holds the lease).
func (s *Service) Trigger() {
	select {
	case s.full <- struct{}{}:
	default:
	}
}

func (s *Service) kickBackfill() {
	select {
	case s.refill <- struct{}{}:
	default:
	}
}

// Run runs the stage and, connected to Telegram, the scheduler, until ctx ends or the
// Telegram session proves unusable (ErrTelegramAuth).
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- s.stage.Run(ctx) }()
	go func() {
		err := s.tg.Run(ctx, s.schedule)
		if err != nil && ctx.Err() == nil {
			if c := telegram.Classify(err); c.Class == telegram.ClassAuth && !errors.Is(err, ErrTelegramAuth) {
				err = fmt.Errorf("%w: %w", ErrTelegramAuth, err)
			}
			s.log.Error("ingest stopped", "err", err)
		}
		errc <- err
	}()
	var errs []error
	for range 2 {
		err := <-errc
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) onSubscribed(ctx context.Context, _ events.Event, p *events.ChannelSubscribed) ([]events.Event, error) {
	key, err := s.reg.subscribe(ctx, p, s.now())
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "channel subscribed", "key", key)
	s.kickBackfill()
	return nil, nil
}

func (s *Service) onUnsubscribed(ctx context.Context, _ events.Event, p *events.ChannelUnsubscribed) ([]events.Event, error) {
	if err := s.reg.unsubscribe(ctx, p); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "channel unsubscribed", "channel", p.SubjectToken())
	return nil, nil
}

// schedule runs while connected to Telegram: it competes for the lease and, while it holds
// it, leads the runs.
func (s *Service) schedule(ctx context.Context) error {
	for {
		ok, err := s.lease.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler lease", "err", err)
		}
		if ok {
			s.log.Info("scheduler lease acquired: this process schedules ingest runs", "owner", s.lease.owner)
			lctx, release := s.lease.hold(ctx)
			err := s.lead(lctx)
			if rerr := release(); rerr != nil {
				s.log.Warn("scheduler lease not released: other processes wait for it to expire", "ttl", s.cfg.LeaseTTL, "err", rerr)
			}
			if err != nil {
				return err
			}
			if cause := context.Cause(lctx); errors.Is(cause, ErrLeaseLost) {
				s.log.Warn("scheduler lease lost to another process")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.LeaseTTL / 3):
		}
	}
}

// lead runs the scheduler loop while the lease is held; it returns nil when the lease or
// ctx ends and ErrTelegramAuth when the session is unusable.
func (s *Service) lead(ctx context.Context) error {
	go s.watchRegistry(ctx)
	backfillOnly := false
	for {
		rep := s.runOnce(ctx, backfillOnly)
		if s.onRun != nil && (!backfillOnly || len(rep.Channels) > 0 || rep.Err != nil) {
			s.onRun(rep)
		}
		if errors.Is(rep.Err, ErrTelegramAuth) {
			return rep.Err
		}
		if rep.Err != nil && ctx.Err() == nil {
			s.log.Warn("ingest run ended early", "err", rep.Err)
		}
		timer := time.NewTimer(s.jittered(s.cfg.Interval))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
			backfillOnly = false
		case <-s.full:
			backfillOnly = false
		case <-s.refill:
			backfillOnly = true
		}
		timer.Stop()
	}
}

// watchRegistry wakes the scheduler when a new or re-added subscription (Due) appears in
// the registry, whichever ingest process applied it.
func (s *Service) watchRegistry(ctx context.Context) {
	w, err := s.reg.kv.WatchFiltered(ctx, []string{prefixChannel + "*", prefixPending + "*"}, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("watch channel registry", "err", err)
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			var r record
			if jsonUnmarshal(e.Value(), &r) == nil && r.Subscribed && r.Due && r.RetryAt.IsZero() {
				s.kickBackfill()
			}
		}
	}
}

func (s *Service) jittered(d time.Duration) time.Duration {
	if s.cfg.Jitter <= 0 {
		return d
	}
	f := 1 + s.cfg.Jitter*(2*mrand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// backoff is the delay before retrying a channel after its n-th failure in a row: the
// interval, doubled each time, at most BackoffMax, jittered — worker.Backoff, the one
// backoff rule of the system.
func (s *Service) backoff(n int) time.Duration {
	return worker.Backoff{Base: s.cfg.Interval, Max: s.cfg.BackoffMax, Jitter: s.cfg.Jitter}.Delay(n)
}

// runOnce reads every subscribed channel (or only those waiting for a backfill). One
// channel's failure is recorded and the run goes on; only an unusable session, the end of
// ctx or the registry being unreadable end it early.
func (s *Service) runOnce(ctx context.Context, backfillOnly bool) RunReport {
	rep := RunReport{Owner: s.lease.owner, StartedAt: s.now(), BackfillOnly: backfillOnly}
	defer func() { rep.FinishedAt = s.now() }()
	recs, err := s.reg.records(ctx)
	if err != nil {
		rep.Err = err
		return rep
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Due != recs[j].Due {
			return recs[i].Due
		}
		return recs[i].LastSync.Before(recs[j].LastSync)
	})
	resolves := 0
	done := map[events.ChannelID]bool{}
	for _, r := range recs {
		if ctx.Err() != nil {
			rep.Err = ctx.Err()
			return rep
		}
		if !r.Subscribed || backfillOnly && !r.Due || done[r.ChannelID] {
			continue
		}
		if s.now().Before(r.RetryAt) {
			continue
		}
		cr, err := s.channel(ctx, r, &resolves)
		if cr != nil {
			rep.Channels = append(rep.Channels, *cr)
			if cr.ChannelID.Valid() {
				done[cr.ChannelID] = true
			}
		}
		if err != nil {
			rep.Err = err
			return rep
		}
	}
	if backfillOnly && len(rep.Channels) == 0 {
		return rep
	}
	s.log.Info("ingest run finished", "channels", len(rep.Channels), "backfill_only", backfillOnly)
	return rep
}

// channel reads one channel and records the outcome.
func (s *Service) channel(ctx context.Context, r record, resolves *int) (*ChannelReport, error) {
	start := s.now()
	rep := &ChannelReport{ChannelID: r.ChannelID, Username: r.Username}
	ch, err := s.resolve(ctx, &r, resolves)
	if errors.Is(err, errBudget) {
		rep.Deferred = "resolve budget of this run is spent"
		return rep, nil
	}
	rep.ChannelID = r.ChannelID
	if err == nil {
		var st *events.ChannelSynced
		st, err = s.syncChannel(ctx, &r, ch, start)
		if err == nil {
			rep.Synced = st
			return rep, nil
		}
	}
	return s.failed(ctx, r, rep, err)
}

var errBudget = errors.New("resolve budget spent")

// resolve returns the channel to read, resolving its username (once: the result is
// cached in the registry) or looking up an id-only channel's access hash.
func (s *Service) resolve(ctx context.Context, r *record, resolves *int) (telegram.Channel, error) {
	if r.ChannelID.Valid() && r.AccessHash != 0 {
		return telegram.Channel{ID: r.ChannelID, AccessHash: r.AccessHash, Username: r.Username, Title: r.Title}, nil
	}
	if r.Username != "" {
		res, found, err := s.reg.resolution(ctx, r.Username)
		if err != nil {
			return telegram.Channel{}, err
		}
		if !found {
			if *resolves >= s.cfg.ResolvePerRun {
				return telegram.Channel{}, errBudget
			}
			*resolves++
			s.metrics.resolves.Inc()
			ch, err := s.tg.Resolve(ctx, r.Username)
			if err != nil {
				return telegram.Channel{}, err
			}
			res = resolution{ChannelID: ch.ID, AccessHash: ch.AccessHash, Username: ch.Username, Title: ch.Title, ResolvedAt: s.now()}
			s.log.Info("username resolved", "username", r.Username, "channel", ch.ID)
		}
		nr, err := s.reg.resolved(ctx, *r, res)
		if err != nil {
			return telegram.Channel{}, err
		}
		*r = nr
		return telegram.Channel{ID: r.ChannelID, AccessHash: r.AccessHash, Username: r.Username, Title: r.Title}, nil
	}
	// Known by id only.
	if *resolves >= s.cfg.ResolvePerRun {
		return telegram.Channel{}, errBudget
	}
	*resolves++
	ch, err := s.tg.LookupChannel(ctx, telegram.Channel{ID: r.ChannelID})
	if err != nil {
		return telegram.Channel{}, err
	}
	err = s.reg.update(ctx, r.key(), func(x *record, found bool) (bool, error) {
		if !found {
			return false, nil
		}
		x.AccessHash, x.Title = ch.AccessHash, ch.Title
		if x.Username == "" {
			x.Username = ch.Username
		}
		*r = *x
		return true, nil
	})
	return ch, err
}

// failed records a channel failure: a channels.failed fact and the retry time in the
// registry. An unusable session is not a channel failure: it ends the run.
func (s *Service) failed(ctx context.Context, r record, rep *ChannelReport, err error) (*ChannelReport, error) {
	f := telegram.Classify(err)
	if ctx.Err() != nil || f.Class == telegram.ClassCanceled {
		return nil, ctx.Err()
	}
	if f.Class == telegram.ClassAuth {
		s.log.Error("Telegram session unusable: ingest stops", "code", f.Code, "err", err)
		s.metrics.failures.WithLabelValues(string(telegram.ClassAuth)).Inc()
		return nil, fmt.Errorf("%w: %w", ErrTelegramAuth, err)
	}
	now := s.now()
	failures := r.Failures + 1
	var retry time.Duration
	permanent := false
	switch f.Class {
	case telegram.ClassChannel:
		retry, permanent = s.cfg.FailedRecheck, true
	case telegram.ClassFlood:
		retry = f.Wait + time.Duration(mrand.Int64N(int64(time.Second)))
	default:
		retry = s.backoff(failures)
	}
	code := f.Code
	if code == "" {
		code = "TRANSIENT"
	}
	p := &events.ChannelFailed{ChannelID: r.ChannelID, Username: validUsername(r.Username), Code: code, Reason: err.Error(),
		Permanent: permanent, RetryAt: now.Add(retry), At: now}
	if !p.ChannelID.Valid() && p.Username == "" {
		return rep, nil
	}
	s.log.Warn("channel failed", "channel", r.name(), "class", f.Class, "code", code, "retry_in", retry.Round(time.Second), "err", err)
	s.metrics.failures.WithLabelValues(string(f.Class)).Inc()
	ev := events.New(events.ProducerIngest, p, now, code, now.Format(time.RFC3339Nano))
	rep.Failed = p
	// Without the fact operators do not see the failure; without the registry entry the
	// retry time is lost and the channel is read again at once (a flood wait ignored).
	// Either means the log or the registry is failing: the run ends with the error.
	if _, perr := s.publish(ctx, []events.Event{ev}); perr != nil {
		return rep, fmt.Errorf("channel %s: publish channels.failed: %w", r.name(), perr)
	}
	uerr := s.reg.update(ctx, r.key(), func(x *record, found bool) (bool, error) {
		if !found {
			return false, nil
		}
		x.ErrorCode, x.LastError, x.Failures, x.RetryAt = code, err.Error(), failures, p.RetryAt
		return true, nil
	})
	if uerr != nil {
		return rep, fmt.Errorf("channel %s: record the failure: %w", r.name(), uerr)
	}
	return rep, nil
}

func validUsername(u string) string {
	if events.ValidUsername(u) {
		return u
	}
	return ""
}
