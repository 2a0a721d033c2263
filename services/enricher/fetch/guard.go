package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// Guard decides which addresses may be dialled: code.dny.dev/ssrf's deny lists (IANA
// special-purpose IPv4 ranges; everything outside IPv6 global unicast, which covers ::1,
// fc00::/7 and fe80::/10) with the allowed CIDRs checked first, and only the allowed ports.
type Guard struct {
	g *ssrf.Guardian
}

// NewGuard builds a guard from an allow list of CIDRs and the ports that may be dialled.
func NewGuard(allowCIDRs []string, ports []int) (*Guard, error) {
	prefixes, err := parseCIDRs(allowCIDRs)
	if err != nil {
		return nil, err
	}
	var v4, v6 []netip.Prefix
	for _, p := range prefixes {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	ps := make([]uint16, 0, len(ports))
	for _, p := range ports {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("port %d is not a TCP port", p)
		}
		ps = append(ps, uint16(p))
	}
	if len(ps) == 0 {
		return nil, errors.New("no port may be dialled")
	}
	return &Guard{g: ssrf.New(
		ssrf.WithAllowedV4Prefixes(v4...),
		ssrf.WithAllowedV6Prefixes(v6...),
		ssrf.WithPorts(ps...),
	)}, nil
}

// Control is a net.Dialer.Control function: it runs after the address is known and
// before connect, and refuses with an error wrapping ssrf.ErrProhibitedIP (or …Port,
// …Network). IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return g.g.Safe(network, address, nil)
	}
	if ap.Addr().Is4In6() {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if network == "tcp6" {
			network = "tcp4"
		}
	}
	return g.g.Safe(network, ap.String(), nil)
}

// Resolver looks names up; *net.Resolver is one. Tests inject a map.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialer resolves a name itself and dials each answer through the guard, so that every
// address of every DNS answer is checked at dial time (no rebinding window: the checked
// address is the one connected to).
type dialer struct {
	resolver Resolver
	// control is the guard's Control, possibly wrapped (tests observe dials with it).
	control func(network, address string, c syscall.RawConn) error
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portStr, ssrf.ErrInvalidHostPort)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = d.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errDNS, host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%w: %s: no address", errDNS, host)
		}
	}
	var errs []error
	for _, a := range addrs {
		nd := net.Dialer{Control: d.control, KeepAlive: 30 * time.Second}
		c, err := nd.DialContext(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
