package netns

import (
	"fmt"
	"math/big"
	"net"
	"net/netip"
)

// Link addresses come in blocks of four, one block per link: the network
// address, the host side (the sandbox's gateway), the sandbox side and the
// broadcast address, a /30 in IPv4 and a /126 in IPv6.
const (
	blockSize   = 4
	hostOffset  = 1
	guestOffset = 2
)

// blockBits is the prefix length of one link's block for the family of a.
func blockBits(a netip.Addr) int { return a.BitLen() - 2 }

// addrAt returns the address offset addresses after the start of p, and
// false when that is outside p.
func addrAt(p netip.Prefix, offset uint64) (netip.Addr, bool) {
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	n := new(big.Int).Add(base, new(big.Int).SetUint64(offset))
	b := n.Bytes()
	size := p.Addr().BitLen() / 8
	if len(b) > size {
		return netip.Addr{}, false
	}
	buf := make([]byte, size)
	copy(buf[size-len(b):], b)
	a, _ := netip.AddrFromSlice(buf)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a, p.Contains(a)
}

// offsetOf returns how far a lies from the start of p. a must be inside p.
func offsetOf(p netip.Prefix, a netip.Addr) uint64 {
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	n := new(big.Int).SetBytes(a.AsSlice())
	return new(big.Int).Sub(n, base).Uint64()
}

// capacity returns how many addresses p holds, capped at limit.
func capacity(p netip.Prefix, limit uint64) uint64 {
	bits := p.Addr().BitLen() - p.Bits()
	if bits >= 63 {
		return limit
	}
	return min(uint64(1)<<bits, limit)
}

// overlaps reports whether two prefixes share any address.
func overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// ipNet converts an address and a prefix length to the form netlink wants.
func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, a.BitLen())}
}

// addrFromIP converts a netlink address back to netip form.
func addrFromIP(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// maxLinks bounds the number of link blocks a manager hands out, however
// large its subnet.
const maxLinks = 1 << 20

// maxMembers bounds the number of members of one private network.
const maxMembers = 1 << 16

// linkBlock returns the host and sandbox addresses of link block i of p.
func linkBlock(p netip.Prefix, i uint64) (host, guest netip.Addr, err error) {
	h, ok1 := addrAt(p, i*blockSize+hostOffset)
	g, ok2 := addrAt(p, i*blockSize+guestOffset)
	if !ok1 || !ok2 {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("netns: link block %d is outside %s", i, p)
	}
	return h, g, nil
}

// linkBlocks returns how many link blocks p holds.
func linkBlocks(p netip.Prefix) uint64 {
	return capacity(p, maxLinks*blockSize) / blockSize
}
