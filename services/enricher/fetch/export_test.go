package fetch

// WithDialObserver runs observe for every address the guard let through, just before
// connect; an error from it refuses the dial. Tests use it to see that a refused address
// was never dialled, and to stop a broken guard from sending traffic off the machine.
func WithDialObserver(observe func(network, address string) error) Option {
	return func(o *options) error {
		o.observe = observe
		return nil
	}
}
