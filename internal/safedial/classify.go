package safedial

import (
	"fmt"
	"net/netip"
)

// A special range is an address block that is not a public destination,
// and why. Blocks marked embedded4 carry an IPv4 address that a gateway
// reaches on our behalf (NAT64, 6to4): they are as public as that address.
type special struct {
	prefix    netip.Prefix
	why       string
	embedded4 func(a [16]byte) netip.Addr
}

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// The IPv4 blocks of the IANA special-purpose registry that are not
// globally reachable, the metadata address first for its own message.
var specials4 = []special{
	{prefix: p("0.0.0.0/8"), why: `an unspecified ("this network") address`},
	{prefix: p("10.0.0.0/8"), why: "a private address (RFC 1918)"},
	{prefix: p("100.64.0.0/10"), why: "a carrier-grade NAT address (RFC 6598)"},
	{prefix: p("127.0.0.0/8"), why: "a loopback address"},
	{prefix: p("169.254.169.254/32"), why: "the link-local cloud metadata address"},
	{prefix: p("169.254.0.0/16"), why: "a link-local address"},
	{prefix: p("172.16.0.0/12"), why: "a private address (RFC 1918)"},
	{prefix: p("192.0.0.0/24"), why: "an IETF protocol assignment (RFC 6890)"},
	{prefix: p("192.0.2.0/24"), why: "a documentation address (TEST-NET-1)"},
	{prefix: p("192.88.99.0/24"), why: "a 6to4 relay anycast address (deprecated)"},
	{prefix: p("192.168.0.0/16"), why: "a private address (RFC 1918)"},
	{prefix: p("198.18.0.0/15"), why: "a benchmarking address (RFC 2544)"},
	{prefix: p("198.51.100.0/24"), why: "a documentation address (TEST-NET-2)"},
	{prefix: p("203.0.113.0/24"), why: "a documentation address (TEST-NET-3)"},
	{prefix: p("224.0.0.0/4"), why: "a multicast address"},
	{prefix: p("255.255.255.255/32"), why: "the broadcast address"},
	{prefix: p("240.0.0.0/4"), why: "a reserved address (240.0.0.0/4)"},
}

// The IPv6 blocks inside global unicast (2000::/3) that are not public,
// and the translation blocks outside it that may be. Every other address
// outside 2000::/3 is refused.
var specials6 = []special{
	{prefix: p("64:ff9b::/96"), why: "a NAT64 address", embedded4: func(a [16]byte) netip.Addr {
		return netip.AddrFrom4([4]byte{a[12], a[13], a[14], a[15]})
	}},
	{prefix: p("64:ff9b:1::/48"), why: "a local-use NAT64 address (RFC 8215)"},
	{prefix: p("2001::/32"), why: "a Teredo tunnel address"},
	{prefix: p("2001:2::/48"), why: "a benchmarking address (RFC 5180)"},
	{prefix: p("2001:db8::/32"), why: "a documentation address (RFC 3849)"},
	{prefix: p("2001::/23"), why: "an IETF protocol assignment (RFC 2928)"},
	{prefix: p("2002::/16"), why: "a 6to4 address", embedded4: func(a [16]byte) netip.Addr {
		return netip.AddrFrom4([4]byte{a[2], a[3], a[4], a[5]})
	}},
	{prefix: p("3fff::/20"), why: "a documentation address (RFC 9637)"},
	{prefix: p("5f00::/16"), why: "an SRv6 segment identifier (RFC 9602)"},
	{prefix: p("::/128"), why: "the unspecified address"},
	{prefix: p("::1/128"), why: "a loopback address"},
	{prefix: p("::/96"), why: "an IPv4-compatible address (deprecated)"},
	{prefix: p("100::/64"), why: "a discard-only address (RFC 6666)"},
	{prefix: p("fc00::/7"), why: "a unique local address (fc00::/7)"},
	{prefix: p("fe80::/10"), why: "a link-local address"},
	{prefix: p("fec0::/10"), why: "a site-local address (deprecated)"},
	{prefix: p("ff00::/8"), why: "a multicast address"},
}

var globalUnicast = p("2000::/3")

// Classify reports whether ip is a public destination and, when it is not,
// why, in words that finish "ip is ...": "a loopback address". An
// IPv4-mapped IPv6 address is its IPv4 address; a NAT64 or 6to4 address is
// as public as the IPv4 address it embeds.
func Classify(ip netip.Addr) (public bool, why string) {
	if !ip.IsValid() {
		return false, "not an IP address"
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		for _, s := range specials4 {
			if s.prefix.Contains(ip) {
				return false, s.why
			}
		}
		return true, ""
	}
	for _, s := range specials6 {
		if !s.prefix.Contains(ip) {
			continue
		}
		if s.embedded4 == nil {
			return false, s.why
		}
		v4 := s.embedded4(ip.As16())
		if ok, why := Classify(v4); !ok {
			return false, fmt.Sprintf("%s of %s, %s", s.why, v4, why)
		}
		return true, ""
	}
	if !globalUnicast.Contains(ip) {
		return false, "not a global unicast address (outside 2000::/3)"
	}
	return true, ""
}
