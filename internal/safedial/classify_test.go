package safedial_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/damperdev/damper/internal/safedial"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		ip  string
		why string // empty: public
	}{
		// Public.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"140.82.112.3", ""},
		{"100.63.255.255", ""},  // just below CGNAT
		{"100.128.0.0", ""},     // just above CGNAT
		{"172.15.255.255", ""},  // just below 172.16/12
		{"172.32.0.0", ""},      // just above
		{"169.253.255.255", ""}, // just below link-local
		{"192.0.1.1", ""},
		{"198.20.0.1", ""}, // just above benchmarking
		{"223.255.255.255", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:82b::200e", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},      // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},       // 6to4 of 8.8.8.8
		{"2001:200::1", ""},           // just past 2001::/23
		{"3fff:1000::1", ""},          // just past 3fff::/20
		{"2620:fe::fe", ""},           // Quad9
		{"2600:1f18:24e6:b900::", ""}, // AWS

		// IPv4 special-purpose blocks.
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "metadata"},
		{"169.254.0.1", "link-local"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.0.0.8", "IETF protocol assignment"},
		{"192.0.0.170", "IETF protocol assignment"},
		{"192.0.2.1", "documentation"},
		{"192.88.99.1", "6to4 relay"},
		{"192.168.1.1", "private"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.254", "reserved"},
		{"255.255.255.255", "broadcast"},

		// IPv4 embedded in IPv6.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:169.254.169.254", "metadata"},
		{"::ffff:10.1.2.3", "private"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "NAT64 address of 127.0.0.1, a loopback address"},
		{"64:ff9b::a9fe:a9fe", "NAT64 address of 169.254.169.254"},
		{"64:ff9b::c0a8:101", "private"},
		{"64:ff9b:1::808:808", "local-use NAT64"},
		{"2002:7f00:1::1", "6to4 address of 127.0.0.1, a loopback address"},
		{"2002:a00:1::", "6to4 address of 10.0.0.1"},
		{"2002:a9fe:a9fe::1", "metadata"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},

		// IPv6 special-purpose blocks.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"fec0::1", "site-local"},
		{"fc00::1", "unique local"},
		{"fd00:ec2::254", "unique local"}, // AWS's IPv6 metadata address
		{"fdff:ffff::1", "unique local"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"100::1", "discard-only"},
		{"2001:db8::1", "documentation"},
		{"2001:db8:ffff::1", "documentation"},
		{"3fff::1", "documentation"},
		{"2001:2::1", "benchmarking"},
		{"2001:10::1", "IETF protocol assignment"},
		{"2001:1ff::1", "IETF protocol assignment"},
		{"5f00::1", "SRv6"},
		{"1::1", "outside 2000::/3"},
		{"4000::1", "outside 2000::/3"},
		{"e000::1", "outside 2000::/3"},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			public, why := safedial.Classify(netip.MustParseAddr(tc.ip))
			if tc.why == "" {
				assert.True(t, public, "refused as %s", why)
				assert.Empty(t, why)
				return
			}
			assert.False(t, public)
			assert.Contains(t, why, tc.why)
		})
	}
	public, why := safedial.Classify(netip.Addr{})
	assert.False(t, public)
	assert.NotEmpty(t, why)
}

// BenchmarkClassify is the check's cost on every new connection.
func BenchmarkClassify(b *testing.B) {
	ips := []netip.Addr{netip.MustParseAddr("140.82.112.3"), netip.MustParseAddr("2606:4700:4700::1111"), netip.MustParseAddr("64:ff9b::7f00:1")}
	for b.Loop() {
		for _, ip := range ips {
			safedial.Classify(ip)
		}
	}
}
