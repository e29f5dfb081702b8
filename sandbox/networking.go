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

// Networking is the process's setup for the networks of its sandboxes:
// where link addresses come from, how many ready network namespaces to
// keep, and which namespace holds the host sides of links. A process has
// one, made with the zero Networking's defaults the first time a sandbox
// needs a link, a private network or a forwarded port, or by
// SetNetworking.
type Networking struct {
	// LinkSubnet is the IPv4 subnet that link addresses come from, a /30
	// per sandbox. The zero value means 10.213.0.0/16. It must overlap no
	// address or route of the host, nor another process's link subnet.
	LinkSubnet netip.Prefix
	// LinkSubnet6 is the IPv6 subnet that links also take addresses from,
	// a /126 per sandbox, such as a /64 of fd00::/8. The zero value means
	// links have IPv4 only.
	LinkSubnet6 netip.Prefix
	// PoolSize is how many ready network namespaces (lo up) to keep for
	// sandboxes with a link, networks or ports, refilled in the
	// background: with a ready one, a sandbox does not wait the 0.6 to
	// 0.8 ms the kernel takes to make one. Zero means
	// DefaultNetworkPoolSize; a negative value means no pool. Sandboxes
	// without those get their namespace as they are forked instead, which
	// is cheaper than a pool on a small machine.
	PoolSize int
	// Host is the network namespace that holds the host sides of links
	// and the host ports' listeners. Nil means the caller's. Tests use a
	// namespace of their own, so that all their traffic stays in
	// namespaces they made. The caller keeps it open until
	// CloseNetworking.
	Host *netns.NS
}

// DefaultNetworkPoolSize is the pool of ready network namespaces a
// process keeps when Networking.PoolSize is zero.
const DefaultNetworkPoolSize = 2

// networking holds the process's netns.Manager.
var networking struct {
	mu  sync.Mutex
	cfg Networking
	m   *netns.Manager // nil until needed, and after CloseNetworking
}

// managerConfig is the netns.ManagerConfig of n.
func (n Networking) managerConfig() netns.ManagerConfig {
	mc := netns.ManagerConfig{LinkSubnet: n.LinkSubnet, LinkSubnet6: n.LinkSubnet6, PoolSize: n.PoolSize, Host: n.Host}
	switch {
	case n.PoolSize == 0:
		mc.PoolSize = DefaultNetworkPoolSize
	case n.PoolSize < 0:
		mc.PoolSize = 0
	}
	return mc
}

// SetNetworking replaces the process's network setup with n: it closes
// what the previous one held (as CloseNetworking does, so no sandbox with
// a link, networks or ports may still run) and makes the new one at once,
// removing the links that dead owners left on the host. Errors about a
// field of n are *ConfigError values that name it ("LinkSubnet"); one is
// a subnet that overlaps the host's addresses or routes. It needs host
// root.
func SetNetworking(n Networking) error {
	networking.mu.Lock()
	defer networking.mu.Unlock()
	mc := n.managerConfig()
	if err := mc.Validate(); err != nil {
		return managerConfigErr(err)
	}
	if err := closeManagerLocked(); err != nil {
		return err
	}
	m, err := netns.NewManager(mc)
	if err != nil {
		return managerConfigErr(err)
	}
	networking.cfg, networking.m = n, m
	return nil
}

// CloseNetworking releases everything the process holds for the networks
// of sandboxes: the pools of ready namespaces (those kept for sandboxes
// without a network too), every private network, and the networks of
// sandboxes still running, which lose their links; and it waits until the
// links of ended sandboxes are gone from the host. Call it when the
// process is done with sandboxes; nothing of them is left on the host
// afterwards. Later sandboxes make the setup anew, with the same
// Networking. Closing twice is not an error.
func CloseNetworking() error {
	perr := closeIsolatedPool()
	networking.mu.Lock()
	defer networking.mu.Unlock()
	return errors.Join(closeManagerLocked(), perr)
}

func closeManagerLocked() error {
	m := networking.m
	if m == nil {
		return nil
	}
	networking.m = nil
	if err := m.Close(); err != nil {
		return fmt.Errorf("stockade: close networking: %w", err)
	}
	return nil
}

// manager returns the process's manager, making it when there is none.
func manager() (*netns.Manager, error) {
	networking.mu.Lock()
	defer networking.mu.Unlock()
	if networking.m != nil {
		return networking.m, nil
	}
	m, err := netns.NewManager(networking.cfg.managerConfig())
	if err != nil {
		var fe *ConfigError
		if errors.As(err, &fe) {
			return nil, &ConfigError{Field: "Network", Err: fmt.Errorf("the process's Networking.%s: %w (choose another with SetNetworking)", fe.Field, fe.Err)}
		}
		return nil, setupErr("network", "", err)
	}
	networking.m = m
	return m, nil
}

// checkNetwork checks nc against the process's networks and link subnets,
// creating nothing: before the process has a manager, it has no networks.
func checkNetwork(nc netns.Config) error {
	networking.mu.Lock()
	defer networking.mu.Unlock()
	if m := networking.m; m != nil {
		return m.Check(nc)
	}
	return networking.cfg.managerConfig().Check(nc)
}

// managerConfigErr names the field of Networking in an error of
// netns.NewManager.
func managerConfigErr(err error) error {
	var fe *ConfigError
	if errors.As(err, &fe) {
		return &ConfigError{Field: fe.Field, Err: fe.Err}
	}
	return setupErr("network", "", err)
}

// PrivateNetworkConfig describes a private network: its Name, which
// sandboxes give in Membership.Network; its IPv4 Subnet (the zero value
// picks the first free /24 of 10.214.0.0/16); and the names of Members
// known ahead of time, which get their addresses at once, so that every
// member's /etc/hosts lists all of them whatever order they start in (a
// member that is not named there is in the hosts files of those that
// join after it). See netns.NetworkConfig.
type PrivateNetworkConfig = netns.NetworkConfig

// PrivateNetwork is a network that sandboxes join by its name: a bridge in
// a network namespace of its own, so nothing of it is on the host. Its
// members reach each other and nothing else. Close it when done; a
// process's networks are also closed by CloseNetworking, and go with the
// process when it dies.
type PrivateNetwork struct {
	n *netns.Network
}

// NewPrivateNetwork creates a private network in the process's network
// setup. Errors about a field of cfg are *ConfigError values that name it:
// a name already taken, or a subnet that overlaps the link subnet or
// another network's. It needs host root.
func NewPrivateNetwork(cfg PrivateNetworkConfig) (*PrivateNetwork, error) {
	if os.Geteuid() != 0 {
		return nil, &FeatureError{Feature: "a private network", Err: errors.New("it needs host root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")}
	}
	m, err := manager()
	if err != nil {
		return nil, err
	}
	n, err := m.NewNetwork(cfg)
	if err != nil {
		var fe *ConfigError
		if errors.As(err, &fe) {
			return nil, &ConfigError{Field: fe.Field, Err: fe.Err}
		}
		return nil, setupErr("network", cfg.Name, err)
	}
	return &PrivateNetwork{n: n}, nil
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
