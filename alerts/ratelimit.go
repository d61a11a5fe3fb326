package alerts

import (
	"net"
	"net/http"
	"net/netip"
)

// ClientKey is the rate-limit key of a request's client: its IP address,
// or for IPv6 its /64 network, which one client usually holds whole. It
// uses RemoteAddr only; a reverse proxy in front must be trusted to set
// it, or every client shares one key. Sign-ups, console sign-ins and admin
// API authentication are all limited by it.
func ClientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
