package netns

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/stockade/stockade/internal/errdefs"
)

// Config is the network of one sandbox. It is plain data; the zero value is
// the safe choice: a namespace of its own with only lo up.
type Config struct {
	// ShareHost, when true, leaves the sandbox in the host's network
	// namespace. The sandbox is then not isolated from the network at all:
	// it sees every host interface, can reach every address the host
	// reaches and can listen on host ports. It cannot be combined with any
	// other field but Hostname and DNS.
	ShareHost bool

	// Link, when not nil, connects the sandbox to the host through a veth
	// pair. Nil means no link.
	Link *Link

	// Networks lists the private networks the sandbox joins. Empty means
	// none.
	Networks []Membership

	// Ports lists host ports forwarded to ports inside the sandbox. Empty
	// means none.
	Ports []Port

	// Hostname is the sandbox's own name in its hosts file. Empty means
	// "sandbox".
	Hostname string

	// DNS lists the name servers written to the sandbox's resolv.conf.
	// Empty means none: lookups that need a server then fail at once. A
	// sandbox only reaches a server outside itself through a Link with
	// DefaultRoute, or on a private network.
	DNS []netip.Addr
}

// Link configures the veth link between the host and a sandbox. Each link
// takes a block of four addresses from the manager's link subnet (a /30, and
// a /126 when the manager has an IPv6 link subnet): the host side is the
// first address of the block and is the sandbox's gateway, the sandbox side
// the second.
type Link struct {
	// Addr is the sandbox's IPv4 address: the second address of a /30
	// block in the manager's link subnet. The zero value means the first
	// free block.
	Addr netip.Addr

	// Addr6 is the sandbox's IPv6 address, in the manager's IPv6 link
	// subnet, placed like Addr. The zero value means the block matching
	// the IPv4 one. It is an error when the manager has no IPv6 link
	// subnet.
	Addr6 netip.Addr

	// DefaultRoute, when true, routes everything through the host side.
	// The sandbox can then reach every address that the host accepts on
	// any interface, and whatever the host forwards. When false (the
	// default) the sandbox reaches only its gateway address: the host side
	// answers ARP only for its own address on the link (no proxy ARP),
	// forwards nothing that comes from the sandbox, and drops packets with
	// a source address that is not the sandbox's. A host with
	// net.ipv4.conf.all.proxy_arp=1 answers ARP for the sandbox all the
	// same, and toggling net.ipv4.ip_forward turns forwarding back on for
	// every link: neither is done here.
	DefaultRoute bool
}

// Membership is a sandbox's place on a private network.
type Membership struct {
	// Network is the name of a network made by Manager.NewNetwork.
	Network string

	// Name is the sandbox's name on the network, as the other members
	// resolve it. Empty means the Config's Hostname.
	Name string

	// Addr is the sandbox's IPv4 address in the network's subnet. The zero
	// value means the address reserved for Name, or the first free one.
	Addr netip.Addr
}

// Port forwards TCP connections from a host address to a port inside the
// sandbox.
type Port struct {
	// Host is the host address and port to listen on. Port 0 picks a free
	// port; Net.Ports tells which. Listening on an unspecified address
	// (0.0.0.0 or ::) exposes the sandbox to every network the host is on.
	Host netip.AddrPort

	// Port is the TCP port inside the sandbox. Connections arrive at the
	// sandbox's 127.0.0.1, so a server listening on the loopback or on the
	// wildcard address receives them, from 127.0.0.1.
	Port uint16
}

// ManagerConfig configures a Manager. The zero value is usable: IPv4 links
// in 10.213.0.0/16, no IPv6, no pool, host sides in the caller's
// namespace.
type ManagerConfig struct {
	// LinkSubnet is the IPv4 subnet that link addresses come from. The
	// zero value means 10.213.0.0/16. It must not overlap an address or
	// route of the host, nor another manager's subnet.
	LinkSubnet netip.Prefix

	// LinkSubnet6 is the IPv6 subnet that link addresses come from. The
	// zero value means links have no IPv6 address.
	LinkSubnet6 netip.Prefix

	// PoolSize is how many ready namespaces to keep. Zero means no pool:
	// every sandbox waits for its namespace to be made.
	PoolSize int

	// Host is the namespace that holds the host sides of links and where
	// stale links are looked for. Nil means the caller's namespace. Tests
	// use a namespace of their own here.
	Host *NS
}

// NetworkConfig describes a private network.
type NetworkConfig struct {
	// Name identifies the network in Membership.Network.
	Name string

	// Subnet is the network's IPv4 subnet. The zero value means the first
	// /24 of 10.214.0.0/16 that overlaps no other subnet of the manager.
	Subnet netip.Prefix

	// Members names members ahead of time: each gets an address now, in
	// order, so that every member's hosts file lists all of them whatever
	// order they start in. Empty means members get addresses as they join.
	Members []string
}

// defaultLinkSubnet is where link addresses come from when
// ManagerConfig.LinkSubnet is zero.
var defaultLinkSubnet = netip.MustParsePrefix("10.213.0.0/16")

// defaultNetworkSpace is where private networks without a Subnet get one.
var defaultNetworkSpace = netip.MustParsePrefix("10.214.0.0/16")

// ErrInvalidConfig is matched by every *ConfigError. It is
// sandbox.ErrInvalidConfig.
var ErrInvalidConfig = errdefs.ErrInvalidConfig

// ErrNotSupported is matched by every error about a feature this host
// lacks. It is sandbox.ErrNotSupported.
var ErrNotSupported = errdefs.ErrNotSupported

// ConfigError is an error about one field of a configuration: Field is its
// path, such as "Networks[1].Addr", and Err a rule the value breaks or what
// the system said when it was applied, such as a port already taken
// (errors.Is(err, syscall.EADDRINUSE)). It matches ErrInvalidConfig. It is
// sandbox.ConfigError.
type ConfigError = errdefs.ConfigError

func invalid(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Validate checks what can be checked in c alone. Manager.Setup checks the
// rest (network names, addresses against subnets) before it creates
// anything.
func (c *Config) Validate() error {
	if c.ShareHost {
		switch {
		case c.Link != nil:
			return invalid("Link", "cannot be combined with ShareHost")
		case len(c.Networks) > 0:
			return invalid("Networks", "cannot be combined with ShareHost")
		case len(c.Ports) > 0:
			return invalid("Ports", "cannot be combined with ShareHost: the sandbox listens on host ports itself")
		}
	}
	if c.Hostname != "" {
		if err := checkHostname(c.Hostname); err != nil {
			return invalid("Hostname", "%v", err)
		}
	}
	if l := c.Link; l != nil {
		if l.Addr.IsValid() && !l.Addr.Is4() {
			return invalid("Link.Addr", "%s is not an IPv4 address", l.Addr)
		}
		if l.Addr6.IsValid() && (!l.Addr6.Is6() || l.Addr6.Is4In6()) {
			return invalid("Link.Addr6", "%s is not an IPv6 address", l.Addr6)
		}
	}
	seen := map[string]bool{}
	for i, m := range c.Networks {
		f := fmt.Sprintf("Networks[%d]", i)
		if err := checkNetworkName(m.Network); err != nil {
			return invalid(f+".Network", "%v", err)
		}
		if seen[m.Network] {
			return invalid(f+".Network", "network %q is joined twice", m.Network)
		}
		seen[m.Network] = true
		if m.Name != "" {
			if err := checkHostname(m.Name); err != nil {
				return invalid(f+".Name", "%v", err)
			}
		}
		if m.Addr.IsValid() && !m.Addr.Is4() {
			return invalid(f+".Addr", "%s is not an IPv4 address", m.Addr)
		}
	}
	hostPorts := map[netip.AddrPort]int{}
	for i, p := range c.Ports {
		f := fmt.Sprintf("Ports[%d]", i)
		if !p.Host.Addr().IsValid() {
			return invalid(f+".Host", "needs an address to listen on, such as 127.0.0.1:8080")
		}
		if p.Port == 0 {
			return invalid(f+".Port", "must be between 1 and 65535")
		}
		if p.Host.Port() != 0 {
			if j, ok := hostPorts[p.Host]; ok {
				return invalid(f+".Host", "%s is already used by Ports[%d]", p.Host, j)
			}
			hostPorts[p.Host] = i
		}
	}
	for i, a := range c.DNS {
		if !a.IsValid() {
			return invalid(fmt.Sprintf("DNS[%d]", i), "is not an address")
		}
	}
	return nil
}

// view is what Setup checks a Config against: the manager's subnets and
// networks, as plain data.
type view struct {
	link4, link6 netip.Prefix
	networks     map[string]netip.Prefix
}

// check validates c against v. It is pure: nothing is looked up or created.
func (v *view) check(c *Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if l := c.Link; l != nil {
		if err := checkLinkAddr("Link.Addr", l.Addr, v.link4); err != nil {
			return err
		}
		if l.Addr6.IsValid() && !v.link6.IsValid() {
			return invalid("Link.Addr6", "the manager has no IPv6 link subnet (ManagerConfig.LinkSubnet6)")
		}
		if err := checkLinkAddr("Link.Addr6", l.Addr6, v.link6); err != nil {
			return err
		}
	}
	var seen []netip.Prefix
	if c.Link != nil {
		seen = append(seen, v.link4)
	}
	for i, m := range c.Networks {
		f := fmt.Sprintf("Networks[%d]", i)
		subnet, ok := v.networks[m.Network]
		if !ok {
			return invalid(f+".Network", "unknown network %q", m.Network)
		}
		for _, s := range seen {
			if overlaps(s, subnet) {
				return invalid(f+".Network", "subnet %s of network %q overlaps %s, which the sandbox also joins", subnet, m.Network, s)
			}
		}
		seen = append(seen, subnet)
		if m.Addr.IsValid() {
			if !subnet.Contains(m.Addr) {
				return invalid(f+".Addr", "%s is outside the subnet %s of network %q", m.Addr, subnet, m.Network)
			}
			off := offsetOf(subnet, m.Addr)
			if off == 0 || off == capacity(subnet, 1<<32)-1 {
				return invalid(f+".Addr", "%s is the network or broadcast address of %s", m.Addr, subnet)
			}
		}
	}
	return nil
}

func checkLinkAddr(field string, a netip.Addr, subnet netip.Prefix) error {
	if !a.IsValid() {
		return nil
	}
	if !subnet.Contains(a) {
		return invalid(field, "%s is outside the link subnet %s", a, subnet)
	}
	off := offsetOf(subnet, a)
	if off%blockSize != guestOffset {
		return invalid(field, "%s is not a sandbox address: links use /%d blocks of %s whose second address is the sandbox's", a, blockBits(a), subnet)
	}
	if off/blockSize >= linkBlocks(subnet) {
		return invalid(field, "%s is beyond the %d links a manager hands out", a, linkBlocks(subnet))
	}
	return nil
}

// Validate checks c alone: subnet shapes and the pool size.
func (c *ManagerConfig) Validate() error {
	if p := c.LinkSubnet; p.IsValid() {
		if err := checkSubnet(p, false, 30); err != nil {
			return invalid("LinkSubnet", "%v", err)
		}
	}
	if p := c.LinkSubnet6; p.IsValid() {
		if err := checkSubnet(p, true, 126); err != nil {
			return invalid("LinkSubnet6", "%v", err)
		}
	}
	if c.PoolSize < 0 || c.PoolSize > 1024 {
		return invalid("PoolSize", "must be between 0 and 1024, not %d", c.PoolSize)
	}
	return nil
}

func checkSubnet(p netip.Prefix, v6 bool, maxBits int) error {
	switch {
	case !v6 && !p.Addr().Is4():
		return fmt.Errorf("%s is not an IPv4 subnet", p)
	case v6 && (!p.Addr().Is6() || p.Addr().Is4In6()):
		return fmt.Errorf("%s is not an IPv6 subnet", p)
	case p.Masked() != p:
		return fmt.Errorf("%s has host bits set; the subnet is %s", p, p.Masked())
	case p.Bits() > maxBits:
		return fmt.Errorf("%s is too small: the prefix may be at most /%d", p, maxBits)
	}
	return nil
}

// checkNetwork validates a network's configuration against the subnets the
// manager already uses (its link subnets first, then its networks by
// name). nc.Subnet must be set.
func checkNetwork(nc *NetworkConfig, v *view) error {
	if err := checkNetworkName(nc.Name); err != nil {
		return invalid("Name", "%v", err)
	}
	if _, ok := v.networks[nc.Name]; ok {
		return invalid("Name", "a network named %q already exists", nc.Name)
	}
	if err := checkSubnet(nc.Subnet, false, 30); err != nil {
		return invalid("Subnet", "%v", err)
	}
	for _, s := range []netip.Prefix{v.link4, v.link6} {
		if s.IsValid() && overlaps(s, nc.Subnet) {
			return invalid("Subnet", "%s overlaps the link subnet %s", nc.Subnet, s)
		}
	}
	for name, s := range v.networks {
		if overlaps(s, nc.Subnet) {
			return invalid("Subnet", "%s overlaps the subnet %s of network %q", nc.Subnet, s, name)
		}
	}
	seen := map[string]int{}
	for i, m := range nc.Members {
		f := fmt.Sprintf("Members[%d]", i)
		if err := checkHostname(m); err != nil {
			return invalid(f, "%v", err)
		}
		if j, ok := seen[m]; ok {
			return invalid(f, "%q is already Members[%d]", m, j)
		}
		seen[m] = i
	}
	if usable := capacity(nc.Subnet, 1<<32) - 2; uint64(len(nc.Members)) > usable {
		return invalid("Members", "%d members do not fit in %s (%d addresses)", len(nc.Members), nc.Subnet, usable)
	}
	return nil
}

// checkHostname applies RFC 1123: dot-separated labels of letters, digits
// and hyphens, none starting or ending with a hyphen, 1 to 63 characters
// each, 253 in all.
func checkHostname(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a host name: each dot-separated label has 1 to 63 characters", s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name: a label starts and ends with a letter or digit", s)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a host name: %q is not a letter, digit or hyphen", s, r)
			}
		}
	}
	return nil
}

// checkNetworkName accepts 1 to 64 letters, digits, '.', '_' and '-', not
// starting with '-' or '.'.
func checkNetworkName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q is not a network name: it has 1 to 64 characters", s)
	}
	if s[0] == '-' || s[0] == '.' {
		return fmt.Errorf("%q is not a network name: it starts with a letter, digit or '_'", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q is not a network name: %q is not a letter, digit, '.', '_' or '-'", s, r)
		}
	}
	return nil
}
