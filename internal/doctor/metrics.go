package doctor

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Series doctor exports (tgflow doctor --listen): what the stages cannot say about
// themselves — consumer lag and state, the log's size, the DLQ by consumer and class, stuck
// facts, read-model checkpoints, channels — computed from one Run per scrape.
var (
	descUp          = prometheus.NewDesc("tgflow_doctor_up", "1 when doctor could read the server's state at this scrape.", nil, nil)
	descHealthy     = prometheus.NewDesc("tgflow_doctor_healthy", "1 when doctor found no failing problem.", nil, nil)
	descProblems    = prometheus.NewDesc("tgflow_doctor_problems", "Problems found, by check and severity.", []string{"check", "severity"}, nil)
	descPending     = prometheus.NewDesc("tgflow_consumer_pending", "Messages not yet delivered to the consumer (its lag).", []string{"consumer"}, nil)
	descAckPending  = prometheus.NewDesc("tgflow_consumer_ack_pending", "Messages delivered and not yet acknowledged.", []string{"consumer"}, nil)
	descRedelivered = prometheus.NewDesc("tgflow_consumer_redelivered", "Messages delivered more than once and not yet acknowledged.", []string{"consumer"}, nil)
	descWaiting     = prometheus.NewDesc("tgflow_consumer_waiting_pulls", "Pull requests waiting on the consumer (0 with work pending: nobody is pulling).", []string{"consumer"}, nil)
	descAckFloor    = prometheus.NewDesc("tgflow_consumer_ack_floor_seq", "Log sequence up to which the consumer acknowledged everything.", []string{"consumer"}, nil)
	descState       = prometheus.NewDesc("tgflow_consumer_state", "1 for each state doctor gives the consumer (ok, idle, stalled, dead, lagging, unknown, not running, absent, paused).", []string{"consumer", "state"}, nil)
	descStreamMsgs  = prometheus.NewDesc("tgflow_stream_messages", "Messages in the stream.", []string{"stream"}, nil)
	descStreamBytes = prometheus.NewDesc("tgflow_stream_bytes", "Bytes in the stream.", []string{"stream"}, nil)
	descStreamMax   = prometheus.NewDesc("tgflow_stream_max_bytes", "The stream's byte limit (-1: none).", []string{"stream"}, nil)
	descLastSeq     = prometheus.NewDesc("tgflow_stream_last_seq", "The stream's last sequence (the log head).", []string{"stream"}, nil)
	descDLQ         = prometheus.NewDesc("tgflow_dlq_messages", "Dead letters, by consumer and class.", []string{"consumer", "class"}, nil)
	descStuck       = prometheus.NewDesc("tgflow_stuck_facts", "Facts older than the deadline not processed by the consumer (capped by --max-stuck).", []string{"consumer"}, nil)
	descCheckpoint  = prometheus.NewDesc("tgflow_projection_checkpoint_seq", "The read model's checkpoint: the last log sequence it applied.", []string{"consumer"}, nil)
	descChanPosts   = prometheus.NewDesc("tgflow_channel_posts", "posts.parsed facts of the channel on the log (its rate is the channel's ingest).", []string{"channel"}, nil)
	descChanSync    = prometheus.NewDesc("tgflow_channel_last_sync_timestamp_seconds", "When the channel's last successful ingest run finished.", []string{"channel"}, nil)
	descChanFailing = prometheus.NewDesc("tgflow_channel_failing", "1 when the channel's last failure is newer than its last successful sync.", []string{"channel"}, nil)
	descDiskFree    = prometheus.NewDesc("tgflow_disk_free_bytes", "Free bytes of the file system holding the log (laptop mode).", []string{"path"}, nil)
)

var allDescs = []*prometheus.Desc{descUp, descHealthy, descProblems, descPending, descAckPending, descRedelivered, descWaiting, descAckFloor,
	descState, descStreamMsgs, descStreamBytes, descStreamMax, descLastSeq, descDLQ, descStuck, descCheckpoint, descChanPosts, descChanSync,
	descChanFailing, descDiskFree}

// Collector exports doctor's findings at each scrape.
type Collector struct {
	js      jetstream.JetStream
	o       Options
	timeout time.Duration
	log     *slog.Logger
}

// NewCollector returns a collector running doctor with o at each scrape, for at most timeout.
func NewCollector(js jetstream.JetStream, o Options, timeout time.Duration, log *slog.Logger) *Collector {
	return &Collector{js: js, o: o, timeout: timeout, log: log}
}

// Describe sends every series the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect runs doctor and sends what it found; when the state cannot be read, only
// tgflow_doctor_up 0.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	r, err := Run(ctx, c.js, c.o)
	if err != nil {
		c.log.Warn("doctor: cannot read the server's state", "err", err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	gauge(descUp, 1)
	gauge(descHealthy, b(r.Healthy))
	problems := map[[2]string]int{}
	for _, p := range r.Problems {
		problems[[2]string{p.Check, string(p.Severity)}]++
	}
	for k, n := range problems {
		gauge(descProblems, float64(n), k[0], k[1])
	}
	for _, cs := range r.Consumers {
		for _, s := range cs.States {
			gauge(descState, 1, cs.Name, s)
		}
		if !cs.Exists {
			continue
		}
		gauge(descPending, float64(cs.Pending), cs.Name)
		gauge(descAckPending, float64(cs.AckPending), cs.Name)
		gauge(descRedelivered, float64(cs.Redelivered), cs.Name)
		gauge(descWaiting, float64(cs.Waiting), cs.Name)
		gauge(descAckFloor, float64(cs.AckFloor), cs.Name)
	}
	for _, s := range r.Streams {
		gauge(descStreamMsgs, float64(s.Msgs), s.Name)
		gauge(descStreamBytes, float64(s.Bytes), s.Name)
		gauge(descStreamMax, float64(s.MaxBytes), s.Name)
		gauge(descLastSeq, float64(s.LastSeq), s.Name)
	}
	for _, g := range r.DLQ.Groups {
		gauge(descDLQ, float64(g.Count), g.Consumer, g.Class)
	}
	stuck := map[string]int{}
	for _, s := range r.Stuck {
		stuck[s.Step]++
	}
	for consumer, n := range stuck {
		gauge(descStuck, float64(n), consumer)
	}
	for _, p := range r.Projections {
		if p.Configured && p.Err == "" {
			gauge(descCheckpoint, float64(p.Checkpoint), p.Consumer)
		}
	}
	for _, cn := range r.Channels {
		gauge(descChanPosts, float64(cn.Posts), cn.Channel)
		if cn.LastSync != nil {
			gauge(descChanSync, float64(cn.LastSync.Unix()), cn.Channel)
		}
		gauge(descChanFailing, b(cn.Failing), cn.Channel)
	}
	if r.Storage.Disk != nil {
		gauge(descDiskFree, float64(r.Storage.Disk.Free), r.Storage.Disk.Path)
	}
}
