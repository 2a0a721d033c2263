package worker

// Middleware wraps a handler with behaviour every message of a stage shares (tracing,
// metrics, recovery, timeouts, rate limits, circuit breakers). Middleware sees the decoded
// event and the handler's result, never NATS.
type Middleware func(HandlerFunc) HandlerFunc

// Chain wraps h in mws; mws[0] is the outermost.
func Chain(h HandlerFunc, mws ...Middleware) HandlerFunc {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}
