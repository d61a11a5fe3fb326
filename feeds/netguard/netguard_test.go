package netguard_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"herald/feeds/netguard"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		addr string
		want string // "" for a public address, else a word of the kind
	}{
		// Public addresses pass.
		{"93.184.215.14", ""},
		{"8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},
		{"2002:808:808::1", ""},

		// IPv4.
		{"0.0.0.0", "this network"},
		{"0.1.2.3", "this network"},
		{"10.0.0.1", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.254", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"169.254.169.254", "link-local"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.0.0.8", "reserved"},
		{"192.0.2.10", "documentation"},
		{"192.168.1.1", "private"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.1", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.254", "reserved"},
		{"255.255.255.255", "broadcast"},

		// IPv6.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"2001:db8::1", "documentation"},
		{"100::1", "reserved"},
		{"64:ff9b:1::1", "private"},

		// IPv4 inside IPv6.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::127.0.0.1", "loopback"},
		{"::10.0.0.1", "private"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"64:ff9b::127.0.0.1", "loopback"},
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"64:ff9b::c0a8:101", "private"},
		{"2002:7f00:1::1", "loopback"},
		{"2002:a00:1::", "private"},
		{"2002:a9fe:a9fe::1", "link-local"},
		{"2002:6440:1::1", "carrier-grade NAT"},
		// Teredo: server 65.54.227.120, client 127.0.0.1 (inverted: 80ff:fffe).
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"},
		// Teredo with a private server.
		{"2001:0:a00:1:8000:63bf:f7f7:f7f7", "private"},
		// Teredo with a public server and client passes.
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", ""},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.addr)
			got := netguard.Classify(ip)
			switch {
			case tc.want == "" && got != "":
				t.Errorf("Classify(%s) = %q, want a public address", tc.addr, got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("Classify(%s) = %q, want %q", tc.addr, got, tc.want)
			}
			err := netguard.Check(ip)
			if (err != nil) != (tc.want != "") || (err != nil && !errors.Is(err, netguard.ErrRefused)) {
				t.Errorf("Check(%s) = %v", tc.addr, err)
			}
		})
	}
}

func TestGuardPermit(t *testing.T) {
	allow := func(s ...string) []netguard.Allowance {
		var out []netguard.Allowance
		for _, v := range s {
			a, err := netguard.ParseAllowance(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
		return out
	}
	cases := []struct {
		name  string
		guard netguard.Guard
		addr  string
		ok    bool
	}{
		{"public by default", netguard.Guard{}, "8.8.8.8:443", true},
		{"loopback refused by default", netguard.Guard{}, "127.0.0.1:80", false},
		{"mapped loopback refused", netguard.Guard{}, "[::ffff:127.0.0.1]:80", false},
		{"everything when private is allowed", netguard.Guard{AllowPrivate: true}, "127.0.0.1:80", true},
		{"an allowed network", netguard.Guard{Allow: allow("10.20.0.0/16")}, "10.20.3.4:443", true},
		{"outside the allowed network", netguard.Guard{Allow: allow("10.20.0.0/16")}, "10.21.0.1:443", false},
		{"an allowed address, any port", netguard.Guard{Allow: allow("192.168.1.7")}, "192.168.1.7:8443", true},
		{"an allowed address and port", netguard.Guard{Allow: allow("127.0.0.1:8081")}, "127.0.0.1:8081", true},
		{"the same address, another port", netguard.Guard{Allow: allow("127.0.0.1:8081")}, "127.0.0.1:8080", false},
		{"an allowed address seen mapped", netguard.Guard{Allow: allow("127.0.0.1:8081")}, "[::ffff:127.0.0.1]:8081", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.guard.Permit(netip.MustParseAddrPort(tc.addr))
			if (err == nil) != tc.ok {
				t.Errorf("Permit(%s) = %v, want allowed %v", tc.addr, err, tc.ok)
			}
		})
	}
	for _, bad := range []string{"", "localhost", "10.0.0.0/33", "example.org:80"} {
		if _, err := netguard.ParseAllowance(bad); err == nil {
			t.Errorf("ParseAllowance(%q) accepted", bad)
		}
	}
}

func TestCheckHostResolves(t *testing.T) {
	ctx := context.Background()
	var g netguard.Guard
	if err := g.CheckHost(ctx, "localhost", 80); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("localhost: %v, want refused", err)
	}
	if err := g.CheckHost(ctx, "::1", 80); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("::1: %v, want refused", err)
	}
	if err := (netguard.Guard{AllowPrivate: true}).CheckHost(ctx, "localhost", 80); err != nil {
		t.Errorf("localhost with private allowed: %v", err)
	}
}
