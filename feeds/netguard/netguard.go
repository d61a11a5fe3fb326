// Package netguard is Herald's one rule for where its outbound requests may
// go. Pulls from publishers and WebSub callbacks are made to addresses that
// strangers choose, so both refuse addresses that are not on the public
// internet (loopback, private, link-local, carrier-grade NAT, multicast,
// reserved, and IPv4 addresses of those kinds embedded in IPv6), unless the
// operator opted in. The check runs when each connection is made, on the
// address actually dialled, so a redirect or a DNS answer that changes
// between a check and a connection cannot get round it.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// RefusedError is a connection that was not made because of where it
// would have gone.
type RefusedError struct {
	// Addr is the address refused, as dialled.
	Addr netip.Addr
	// Kind says what sort of address it is: "a loopback address", ….
	Kind string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s is %s", e.Addr, e.Kind)
}

// ErrRefused matches every *RefusedError with errors.Is.
var ErrRefused = errors.New("netguard: address not on the public internet")

// Is makes errors.Is(err, ErrRefused) true for a *RefusedError.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// special is one range of the IANA special-purpose registries whose
// addresses are not reachable on the public internet.
type special struct {
	prefix netip.Prefix
	kind   string
}

// The ranges refused, from the IANA IPv4 and IPv6 special-purpose address
// registries (those not globally reachable). IPv6 ranges that embed an IPv4
// address (mapped, compatible, NAT64, 6to4, Teredo) are not here: Classify
// looks at the address they carry instead.
var (
	specials4 = []special{
		{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
		{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
		{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address"},
		{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
		{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
		{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
		{netip.MustParsePrefix("192.0.0.0/24"), "a reserved address"},
		{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
		{netip.MustParsePrefix("192.88.99.0/24"), "a reserved address"},
		{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
		{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
		{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
		{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
		{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
		{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
		{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	}
	specials6 = []special{
		{netip.MustParsePrefix("::/128"), "an unspecified address"},
		{netip.MustParsePrefix("::1/128"), "a loopback address"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "a private address"},
		{netip.MustParsePrefix("100::/64"), "a reserved address"},
		{netip.MustParsePrefix("2001:2::/48"), "a benchmarking address"},
		{netip.MustParsePrefix("2001:10::/28"), "a reserved address"},
		{netip.MustParsePrefix("2001:20::/28"), "a reserved address"},
		{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
		{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
		{netip.MustParsePrefix("5f00::/16"), "a reserved address"},
		{netip.MustParsePrefix("fc00::/7"), "a unique-local address"},
		{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
		{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
		{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	}

	mapped4   = netip.MustParsePrefix("::ffff:0:0/96")
	compat4   = netip.MustParsePrefix("::/96")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
)

// Classify says what kind of non-public address ip is ("a loopback
// address", "a private address", …), or "" when it is a public address an
// outbound request may go to. An IPv6 address that carries an IPv4 one is
// judged by the IPv4 address it carries.
func Classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "not an IP address"
	}
	ip = ip.WithZone("")
	if ip.Is4() {
		return lookup(specials4, ip)
	}
	if kind := lookup(specials6, ip); kind != "" {
		return kind
	}
	for _, v4 := range embedded(ip) {
		if kind := lookup(specials4, v4); kind != "" {
			return kind + " (IPv4 " + v4.String() + " inside IPv6)"
		}
	}
	if compat4.Contains(ip) {
		// Deprecated by RFC 4291: nothing public answers at one, whatever
		// IPv4 address it carries.
		return "a reserved address (IPv4-compatible IPv6)"
	}
	return ""
}

func lookup(table []special, ip netip.Addr) string {
	for _, s := range table {
		if s.prefix.Contains(ip) {
			return s.kind
		}
	}
	return ""
}

// embedded returns the IPv4 addresses an IPv6 address carries: the last
// 32 bits of an IPv4-mapped, IPv4-compatible or NAT64 address, bits 16–48
// of a 6to4 address, and a Teredo address's server (bits 32–64) and client
// (the last 32 bits, inverted).
func embedded(ip netip.Addr) []netip.Addr {
	b := ip.As16()
	last := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	switch {
	case mapped4.Contains(ip), compat4.Contains(ip), nat64.Contains(ip):
		return []netip.Addr{last}
	case sixToFour.Contains(ip):
		return []netip.Addr{netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})}
	case teredo.Contains(ip):
		server := netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]})
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []netip.Addr{server, client}
	}
	return nil
}

// Check returns a *RefusedError when ip is not a public address.
func Check(ip netip.Addr) error {
	if kind := Classify(ip); kind != "" {
		return &RefusedError{Addr: ip, Kind: kind}
	}
	return nil
}

// Guard decides which connections may be made. The zero Guard allows
// public addresses only.
type Guard struct {
	// AllowPrivate lets every address through: for a Herald whose
	// publishers or subscribers are all on the operator's own network.
	AllowPrivate bool
	// Allow lists non-public networks (10.20.0.0/16) and single addresses
	// with a port (127.0.0.1:8081) that may be reached all the same.
	Allow []Allowance
}

// Allowance is one entry of Guard.Allow: a network, or one address and
// port.
type Allowance struct {
	Prefix   netip.Prefix
	AddrPort netip.AddrPort
}

// ParseAllowance reads "10.20.0.0/16", "192.0.2.7", "[fd00::1]:8443" or
// "127.0.0.1:8081".
func ParseAllowance(s string) (Allowance, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return Allowance{Prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return Allowance{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return Allowance{AddrPort: ap}, nil
	}
	return Allowance{}, fmt.Errorf("%q is not an IP address, a network such as 10.20.0.0/16 or an address with a port such as 127.0.0.1:8081", s)
}

func (a Allowance) allows(ap netip.AddrPort) bool {
	if a.AddrPort.IsValid() {
		return a.AddrPort == ap
	}
	return a.Prefix.IsValid() && a.Prefix.Contains(ap.Addr())
}

// Permit returns nil when a connection to ap may be made, else a
// *RefusedError.
func (g Guard) Permit(ap netip.AddrPort) error {
	if g.AllowPrivate {
		return nil
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	err := Check(ap.Addr())
	if err == nil {
		return nil
	}
	for _, a := range g.Allow {
		if a.allows(ap) {
			return nil
		}
	}
	return err
}

// Control is a net.Dialer Control function that refuses to connect where
// Permit refuses. It sees the address after DNS resolution, for every
// connection including those made to follow redirects.
func (g Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: dial address %q: %w", address, err)
	}
	return g.Permit(ap)
}

// Dialer returns a dialer with the given connect timeout that connects
// only where g permits.
func (g Guard) Dialer(timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !g.AllowPrivate {
		d.Control = g.Control
	}
	return d
}

// CheckHost resolves host and refuses it when g would refuse any of its
// addresses on port. It is for telling a person early (a WebSub
// subscriber) that an address will be refused, and for requests made
// through a proxy, where Herald connects to the proxy rather than the
// host; the connect-time check in Control is what enforces the rule.
func (g Guard) CheckHost(ctx context.Context, host string, port uint16) error {
	if g.AllowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.Permit(netip.AddrPortFrom(ip, port))
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("host %q does not resolve", host)
	}
	for _, ip := range ips {
		if err := g.Permit(netip.AddrPortFrom(ip, port)); err != nil {
			return err
		}
	}
	return nil
}

// Port is the port u names, or its scheme's default.
func Port(u *url.URL) uint16 {
	if p, err := strconv.ParseUint(u.Port(), 10, 16); err == nil {
		return uint16(p)
	}
	return map[string]uint16{"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}[u.Scheme]
}
