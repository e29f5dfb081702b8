//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/stockade/stockade/netns"
)

// Networking is a network setup for sandboxes with a link, private
// networks or forwarded ports: where link addresses come from, how many
// ready network namespaces to keep, which namespace holds the host sides of
// links, and the private networks. Make one with NewNetworking and name it
// in Network.Networking, or leave that nil for DefaultNetworking. It is
// safe for concurrent use.
type Networking struct {
	cfg NetworkingConfig
	mu  sync.Mutex
	m   *netns.Manager // nil until needed, and after Close
}

// NetworkingConfig configures a Networking. The zero value is usable.
type NetworkingConfig struct {
	// LinkSubnet is the IPv4 subnet of link addresses, a /30 per sandbox;
	// zero means 10.213.0.0/16. It must overlap no address or route of the
	// host, nor another Networking's link subnet.
	LinkSubnet netip.Prefix
	// LinkSubnet6 is an IPv6 subnet links also take addresses from, a /126
	// per sandbox; zero means IPv4 only.
	LinkSubnet6 netip.Prefix
	// PoolSize is how many ready namespaces to keep for sandboxes with a
	// link, networks or ports; zero means DefaultNetworkPoolSize, negative
	// means none.
	PoolSize int
	// Host is the namespace that holds the host sides of links and the
	// listeners of ports; nil means the caller's. It must stay open until
	// Close.
	Host *netns.NS
}

// DefaultNetworkPoolSize is the PoolSize of a NetworkingConfig that sets
// none.
const DefaultNetworkPoolSize = 2

// managerConfig is the netns.ManagerConfig of c.
func (c NetworkingConfig) managerConfig() netns.ManagerConfig {
	mc := netns.ManagerConfig{LinkSubnet: c.LinkSubnet, LinkSubnet6: c.LinkSubnet6, PoolSize: c.PoolSize, Host: c.Host}
	switch {
	case c.PoolSize == 0:
		mc.PoolSize = DefaultNetworkPoolSize
	case c.PoolSize < 0:
		mc.PoolSize = 0
	}
	return mc
}

// NewNetworking makes a network setup at once, removing the links that
// dead owners left on the host. Errors about a field of cfg are
// *ConfigError values that name it ("LinkSubnet"), such as a subnet that
// overlaps the host's addresses or routes. It needs host root.
func NewNetworking(cfg NetworkingConfig) (*Networking, error) {
	mc := cfg.managerConfig()
	if err := mc.Validate(); err != nil {
		return nil, managerConfigErr(err)
	}
	m, err := netns.NewManager(mc)
	if err != nil {
		return nil, managerConfigErr(err)
	}
	return &Networking{cfg: cfg, m: m}, nil
}

// defaultNetworking is the process's default Networking.
var defaultNetworking = &Networking{}

// DefaultNetworking returns the process's network setup for sandboxes
// whose Network.Networking is nil: the zero NetworkingConfig's, made when a
// sandbox first needs it. Its Close also releases the namespaces kept for
// sandboxes without a network (Network.ReuseNamespace, and the pool of
// STOCKADE_NETNS_POOL).
func DefaultNetworking() *Networking { return defaultNetworking }

// Close releases everything n holds: its pool of ready namespaces, its
// private networks, and the networks of its sandboxes still running, which
// lose their links; and it waits until the links of ended sandboxes are
// gone from the host. Nothing of them is left on the host afterwards.
// Sandboxes started later make the setup anew. Closing twice is not an
// error.
func (n *Networking) Close() error {
	var perr error
	if n == defaultNetworking {
		perr = closeIsolatedPool()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return errors.Join(n.closeLocked(), perr)
}

func (n *Networking) closeLocked() error {
	m := n.m
	if m == nil {
		return nil
	}
	n.m = nil
	if err := m.Close(); err != nil {
		return fmt.Errorf("stockade: close networking: %w", err)
	}
	return nil
}

// networkingOf returns the Networking of a sandbox's network.
func networkingOf(nw *Network) *Networking {
	if nw.Networking != nil {
		return nw.Networking
	}
	return defaultNetworking
}

// manager returns n's manager, making it when there is none.
func (n *Networking) manager() (*netns.Manager, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m != nil {
		return n.m, nil
	}
	m, err := netns.NewManager(n.cfg.managerConfig())
	if err != nil {
		var fe *ConfigError
		if errors.As(err, &fe) {
			return nil, &ConfigError{Field: "Network.Networking", Err: fmt.Errorf("NetworkingConfig.%s: %w", fe.Field, fe.Err)}
		}
		return nil, setupErr("network", "", err)
	}
	n.m = m
	return m, nil
}

// check checks nc against n's networks and link subnets, creating
// nothing: before n has a manager, it has no networks.
func (n *Networking) check(nc netns.Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m := n.m; m != nil {
		return m.Check(nc)
	}
	return n.cfg.managerConfig().Check(nc)
}

// managerConfigErr names the field of NetworkingConfig in an error of
// netns.NewManager.
func managerConfigErr(err error) error {
	var fe *ConfigError
	if errors.As(err, &fe) {
		return &ConfigError{Field: fe.Field, Err: fe.Err}
	}
	return setupErr("network", "", err)
}

// PrivateNetworkConfig describes a private network.
type PrivateNetworkConfig struct {
	// Name is what sandboxes give in Membership.Network.
	Name string
	// Subnet is its IPv4 subnet; zero picks the first free /24 of
	// 10.214.0.0/16.
	Subnet netip.Prefix
	// Members names members ahead of time, so that each gets its address
	// now and every member's /etc/hosts lists all of them, whatever order
	// they start in.
	Members []string
}

// PrivateNetwork is a network that sandboxes join by its name: a bridge in
// a network namespace of its own, so nothing of it is on the host. Its
// members reach each other and nothing else. Close it when done; its
// Networking's Close closes it too.
type PrivateNetwork struct {
	n *netns.Network
}

// NewPrivateNetwork creates a private network in n. Errors about a field
// of cfg are *ConfigError values that name it: a name already taken, or a
// subnet that overlaps the link subnet or another network's. It needs host
// root.
func (n *Networking) NewPrivateNetwork(cfg PrivateNetworkConfig) (*PrivateNetwork, error) {
	if os.Geteuid() != 0 {
		return nil, &FeatureError{Feature: "a private network", Err: errors.New("it needs host root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")}
	}
	m, err := n.manager()
	if err != nil {
		return nil, err
	}
	nw, err := m.NewNetwork(netns.NetworkConfig{Name: cfg.Name, Subnet: cfg.Subnet, Members: cfg.Members})
	if err != nil {
		var fe *ConfigError
		if errors.As(err, &fe) {
			return nil, &ConfigError{Field: fe.Field, Err: fe.Err}
		}
		return nil, setupErr("network", cfg.Name, err)
	}
	return &PrivateNetwork{n: nw}, nil
}

// Name returns the network's name.
func (p *PrivateNetwork) Name() string { return p.n.Name() }

// Subnet returns the network's IPv4 subnet.
func (p *PrivateNetwork) Subnet() netip.Prefix { return p.n.Subnet() }

// Close removes the network. Its members keep running without it.
// Closing twice is not an error.
func (p *PrivateNetwork) Close() error { return p.n.Close() }

// cleanupNetwork removes the host sides of links whose owners died while
// something else kept their sandbox's namespace alive; see netns.Cleanup.
// Only host root can.
func cleanupNetwork() error {
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := netns.Cleanup(nil); err != nil {
		return fmt.Errorf("stockade: clean up network links: %w", err)
	}
	return nil
}
