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

// Networking is where the links, networks and ports of sandboxes come from.
type Networking struct {
	cfg NetworkingConfig
	mu  sync.Mutex
	m   *netns.Manager // nil until needed, and after Close
}

// NetworkingConfig configures a Networking. The zero value is usable.
type NetworkingConfig struct {
	LinkSubnet  netip.Prefix // a /30 per link, overlapping nothing of the host's; zero: 10.213.0.0/16
	LinkSubnet6 netip.Prefix // for IPv6 links too; zero: none
	PoolSize    int          // ready namespaces; zero: DefaultNetworkPoolSize, negative: none
	Host        *netns.NS    // holds the host sides; nil: the caller's namespace
}

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

// NewNetworking makes a network setup now; it needs host root.
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

// DefaultNetworking returns the setup of sandboxes whose Networking is nil.
func DefaultNetworking() *Networking { return defaultNetworking }

// Close releases everything n holds on the host, and waits until it is gone.
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
	Name    string       // what Membership.Network names
	Subnet  netip.Prefix // zero picks a free /24 of 10.214.0.0/16
	Members []string     // get addresses now, so that each /etc/hosts lists all
}

// PrivateNetwork is a network that sandboxes join by its name.
type PrivateNetwork struct {
	n *netns.Network
}

// NewPrivateNetwork creates a private network in n. It needs host root.
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

// Close removes the network; its members run on without it.
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
