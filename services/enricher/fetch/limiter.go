package fetch

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
	"golang.org/x/time/rate"
)

// domainLimiter keeps one token bucket per registrable domain (eTLD+1: news.example.co.uk
// and www.example.co.uk share one), so that the links of many posts to one site are spread
// out however many goroutines fetch them.
type domainLimiter struct {
	rps   rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

// maxBuckets bounds the map; idle buckets (full again) are dropped when it is reached.
const maxBuckets = 10000

func newDomainLimiter(rps float64, burst int) *domainLimiter {
	return &domainLimiter{rps: rate.Limit(rps), burst: burst, buckets: make(map[string]*bucket)}
}

// rateKey is the registrable domain of host, or host itself (an IP, "localhost").
func rateKey(host string) string {
	if net.ParseIP(host) != nil {
		return host
	}
	if d, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		return d
	}
	return host
}

// wait blocks until host may be sent a request; it fails at once when the wait would outlast
// ctx's deadline (rate.Limiter.Wait's rule), so a busy domain never stalls past the timeout.
func (l *domainLimiter) wait(ctx context.Context, host string) error {
	key := rateKey(host)
	now := time.Now()
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			idle := time.Duration(float64(l.burst)/float64(l.rps)*float64(time.Second)) + time.Second
			for k, v := range l.buckets {
				if now.Sub(v.used) > idle {
					delete(l.buckets, k)
				}
			}
		}
		b = &bucket{lim: rate.NewLimiter(l.rps, l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	l.mu.Unlock()
	return b.lim.Wait(ctx)
}
