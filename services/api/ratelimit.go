package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per client (the remote IP of the connection; a proxy in
// front would make every client one, so run the API behind none or give it its own
// limits). Buckets idle for longer than they take to refill are forgotten.
type limiters struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu        sync.Mutex
	byClient  map[string]*clientLimiter
	lastSweep time.Time
}

type clientLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiters(perSec float64, burst int) *limiters {
	return &limiters{rate: rate.Limit(perSec), burst: burst, now: time.Now, byClient: map[string]*clientLimiter{}}
}

// idle is how long a bucket must be unused to be forgotten: by then it is full again, so
// forgetting it changes nothing.
func (l *limiters) idle() time.Duration {
	return time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Minute
}

// reserve takes a token for client; when none is left it returns how long to wait.
func (l *limiters) reserve(client string) (ok bool, wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	if now.Sub(l.lastSweep) > l.idle() {
		for k, c := range l.byClient {
			if now.Sub(c.seen) > l.idle() {
				delete(l.byClient, k)
			}
		}
		l.lastSweep = now
	}
	c, found := l.byClient[client]
	if !found {
		c = &clientLimiter{lim: rate.NewLimiter(l.rate, l.burst)}
		l.byClient[client] = c
	}
	c.seen = now
	l.mu.Unlock()
	r := c.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limit answers 429 with Retry-After to a client over its rate.
func (l *limiters) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := l.reserve(clientOf(r))
		if !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			writeError(w, r, http.StatusTooManyRequests, "too many requests: at most "+
				strconv.FormatFloat(float64(l.rate), 'g', -1, 64)+" per second per client (burst "+strconv.Itoa(l.burst)+"); retry after "+strconv.Itoa(max(secs, 1))+" s", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}
