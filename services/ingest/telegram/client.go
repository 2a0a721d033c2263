// Package telegram is ingest's thin wrapper over gotd's MTProto client: resolve a username
// to a channel, page a channel's history, refetch messages, download media into the
// content-addressed media store, and classify RPC errors. Calls go through gotd/contrib's
// scheduler-based flood-wait middleware with a maximum wait (a longer FLOOD_WAIT comes back
// as a *FloodWaitError instead of blocking) and a rate limiter; username resolutions have
// their own, slower limiter.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gotd/contrib/middleware/floodwait"
	"github.com/gotd/contrib/middleware/ratelimit"
	"github.com/gotd/log/logslog"
	"github.com/gotd/td/bin"
	tdtelegram "github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"golang.org/x/time/rate"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/ingest/session"
)

// Channel is a resolved channel: what every call about it needs.
type Channel struct {
	ID         events.ChannelID
	AccessHash int64
	Username   string
	Title      string
}

func (c Channel) input() *tg.InputChannel {
	return &tg.InputChannel{ChannelID: int64(c.ID), AccessHash: c.AccessHash}
}

func (c Channel) peer() *tg.InputPeerChannel {
	return &tg.InputPeerChannel{ChannelID: int64(c.ID), AccessHash: c.AccessHash}
}

// PageSize is the most messages one messages.getHistory call returns.
const PageSize = 100

// Defaults of Config.
const (
	DefaultRPS             = 3
	DefaultResolveInterval = 20 * time.Second
	DefaultFloodMaxWait    = time.Minute
	DefaultFloodMaxRetries = 3
)

// Config configures a Client.
type Config struct {
	AppID   int
	AppHash string
	// Options are gotd's client options. SessionStorage is required; tests point DCList,
	// Resolver and PublicKeys at an in-process tgtest server. Middlewares are appended to.
	Options tdtelegram.Options
	// Media receives downloaded files; required.
	Media MediaStore
	// MaxBytes caps one file (TGFLOW_MEDIA_MAX_BYTES); larger ones are skipped.
	MaxBytes int64
	// MediaKinds are the kinds downloaded (default DefaultMediaKinds).
	MediaKinds []string
	// RPS and Burst limit every call (default 3/s, burst 3).
	RPS   float64
	Burst int
	// ResolveInterval is the least time between two contacts.resolveUsername calls:
	// resolutions are the calls Telegram punishes with the longest flood waits.
	ResolveInterval time.Duration
	// FloodMaxWait is the longest FLOOD_WAIT the middleware sleeps through; a longer one is
	// returned as *FloodWaitError. FloodMaxRetries bounds retries of one call.
	FloodMaxWait    time.Duration
	FloodMaxRetries int
	Logger          *slog.Logger
}

// Client is ingest's Telegram client.
type Client struct {
	client   *tdtelegram.Client
	api      *tg.Client
	waiter   *floodwait.Waiter
	media    MediaStore
	maxBytes int64
	kinds    map[string]bool
	log      *slog.Logger

	resolveMu  sync.Mutex
	resolveLim *rate.Limiter
}

// New builds a client; Run connects it.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.AppID <= 0 || cfg.AppHash == "" {
		errs = append(errs, errors.New("telegram: app id and app hash are required"))
	}
	if cfg.Options.SessionStorage == nil {
		errs = append(errs, errors.New("telegram: a session storage is required"))
	}
	if cfg.Media == nil {
		errs = append(errs, errors.New("telegram: a media store is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 50 << 20
	}
	if len(cfg.MediaKinds) == 0 {
		cfg.MediaKinds = DefaultMediaKinds
	}
	if cfg.RPS <= 0 {
		cfg.RPS = DefaultRPS
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.RPS))
	}
	if cfg.ResolveInterval <= 0 {
		cfg.ResolveInterval = DefaultResolveInterval
	}
	if cfg.FloodMaxWait <= 0 {
		cfg.FloodMaxWait = DefaultFloodMaxWait
	}
	if cfg.FloodMaxRetries <= 0 {
		cfg.FloodMaxRetries = DefaultFloodMaxRetries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "telegram")
	waiter := floodwait.NewWaiter().
		WithMaxWait(cfg.FloodMaxWait).
		WithMaxRetries(cfg.FloodMaxRetries).
		WithTick(5 * time.Millisecond).
		WithCallback(func(ctx context.Context, w floodwait.FloodWait) {
			log.WarnContext(ctx, "flood wait", "wait", w.Duration)
		})
	opts := cfg.Options
	opts.Middlewares = append(slices.Clone(opts.Middlewares),
		tdtelegram.MiddlewareFunc(floodGuard),
		waiter,
		ratelimit.New(rate.Limit(cfg.RPS), cfg.Burst),
	)
	if opts.Logger == nil {
		opts.Logger = logslog.New(slog.New(minLevel{cfg.Logger.With("component", "gotd").Handler(), slog.LevelWarn}))
	}
	client := tdtelegram.NewClient(cfg.AppID, cfg.AppHash, opts)
	kinds := map[string]bool{}
	for _, k := range cfg.MediaKinds {
		kinds[k] = true
	}
	return &Client{
		client:     client,
		api:        client.API(),
		waiter:     waiter,
		media:      cfg.Media,
		maxBytes:   cfg.MaxBytes,
		kinds:      kinds,
		log:        log,
		resolveLim: rate.NewLimiter(rate.Every(cfg.ResolveInterval), 1),
	}, nil
}

// floodGuard turns a FLOOD_WAIT that the waiter refused to sleep through into a
// *FloodWaitError, which no gotd helper sleeps on.
func floodGuard(next tg.Invoker) tdtelegram.InvokeFunc {
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		err := next.Invoke(ctx, input, output)
		if d, ok := tgerr.AsFloodWait(err); ok {
			msg := "FLOOD_WAIT"
			if rpc, ok := tgerr.As(err); ok {
				msg = rpc.Message
			}
			return &FloodWaitError{Wait: d, Message: msg}
		}
		return err
	}
}

// Run connects, checks that the session is logged in, and runs f until it returns or ctx
// ends. A session without a logged-in account fails with ErrNotAuthorized.
//
// The error of f (or of the authorization check) is returned as is, without gotd's
// wrapping, so the caller can report it plainly.
func (c *Client) Run(ctx context.Context, f func(ctx context.Context) error) error {
	var cbErr error
	err := c.waiter.Run(ctx, func(ctx context.Context) error {
		return c.client.Run(ctx, func(ctx context.Context) error {
			st, err := c.client.Auth().Status(ctx)
			switch {
			case err != nil:
				cbErr = fmt.Errorf("telegram: auth status: %w", err)
			case !st.Authorized:
				cbErr = ErrNotAuthorized
			default:
				cbErr = f(ctx)
			}
			return cbErr
		})
	})
	if cbErr != nil {
		return cbErr
	}
	switch {
	case errors.Is(err, session.ErrWrongKey):
		return session.ErrWrongKey
	case errors.Is(err, session.ErrFormat):
		return session.ErrFormat
	}
	return err
}

// Resolve calls contacts.resolveUsername. Calls are spaced by the resolve interval; the
// caller caches the result, so a username is resolved once.
func (c *Client) Resolve(ctx context.Context, username string) (Channel, error) {
	c.resolveMu.Lock()
	defer c.resolveMu.Unlock()
	if err := c.resolveLim.Wait(ctx); err != nil {
		return Channel{}, err
	}
	res, err := c.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: username})
	if err != nil {
		return Channel{}, fmt.Errorf("resolve @%s: %w", username, err)
	}
	pc, ok := res.Peer.(*tg.PeerChannel)
	if !ok {
		return Channel{}, &ChannelError{Code: CodeNotAChannel, Reason: "@" + username + " is not a channel"}
	}
	return channelFrom(res.Chats, pc.ChannelID, username)
}

// LookupChannel reads a channel known only by id (channels.getChannels). Without an access
// hash Telegram answers only for channels this account has seen; others fail with
// CHANNEL_INVALID (subscribe those by username).
func (c *Client) LookupChannel(ctx context.Context, ch Channel) (Channel, error) {
	c.resolveMu.Lock()
	defer c.resolveMu.Unlock()
	if err := c.resolveLim.Wait(ctx); err != nil {
		return Channel{}, err
	}
	res, err := c.api.ChannelsGetChannels(ctx, []tg.InputChannelClass{ch.input()})
	if err != nil {
		return Channel{}, fmt.Errorf("look up channel %s: %w", ch.ID, err)
	}
	return channelFrom(res.GetChats(), int64(ch.ID), ch.Username)
}

func channelFrom(chats []tg.ChatClass, id int64, username string) (Channel, error) {
	for _, chat := range chats {
		switch x := chat.(type) {
		case *tg.Channel:
			if x.ID != id {
				continue
			}
			out := Channel{ID: events.ChannelID(x.ID), AccessHash: x.AccessHash, Username: x.Username, Title: x.Title}
			if out.Username == "" {
				out.Username = username
			}
			return out, nil
		case *tg.ChannelForbidden:
			if x.ID == id {
				return Channel{}, &ChannelError{Code: CodeChannelPrivate, Reason: "channel " + events.ChannelID(id).String() + " is private or banned"}
			}
		}
	}
	return Channel{}, &ChannelError{Code: "CHANNEL_INVALID", Reason: "channel " + events.ChannelID(id).String() + " is not in the answer"}
}

// HistoryQuery is one messages.getHistory page.
type HistoryQuery struct {
	// OffsetID returns messages with ids below it (0: from the newest).
	OffsetID int64
	// MinID and MaxID bound ids exclusively (0: no bound).
	MinID int64
	MaxID int64
	// Limit is at most PageSize (default PageSize).
	Limit int
}

// History returns one page of a channel's history, newest first.
func (c *Client) History(ctx context.Context, ch Channel, q HistoryQuery) ([]Message, error) {
	if q.Limit <= 0 || q.Limit > PageSize {
		q.Limit = PageSize
	}
	res, err := c.api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{
		Peer:     ch.peer(),
		OffsetID: int(q.OffsetID),
		Limit:    q.Limit,
		MinID:    int(q.MinID),
		MaxID:    int(q.MaxID),
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", ch.ID, err)
	}
	return mapMessages(ch, res), nil
}

// Messages refetches messages by id (channels.getMessages), in the order asked. A deleted
// message comes back as KindEmpty.
func (c *Client) Messages(ctx context.Context, ch Channel, ids []int64) ([]Message, error) {
	in := make([]tg.InputMessageClass, len(ids))
	for i, id := range ids {
		in[i] = &tg.InputMessageID{ID: int(id)}
	}
	res, err := c.api.ChannelsGetMessages(ctx, &tg.ChannelsGetMessagesRequest{Channel: ch.input(), ID: in})
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", ch.ID, err)
	}
	got := mapMessages(ch, res)
	byID := make(map[int64]Message, len(got))
	for _, m := range got {
		byID[m.ID] = m
	}
	out := make([]Message, len(ids))
	for i, id := range ids {
		m, ok := byID[id]
		if !ok {
			m = Message{ID: id, Kind: KindEmpty}
		}
		out[i] = m
	}
	return out, nil
}

func mapMessages(ch Channel, res tg.MessagesMessagesClass) []Message {
	mod, ok := res.AsModified()
	if !ok {
		return nil
	}
	msgs := mod.GetMessages()
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, MapMessage(ch, m))
	}
	return out
}

// minLevel drops records below a level: gotd logs every connection step at info.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}

func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }
