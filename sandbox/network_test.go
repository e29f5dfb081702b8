//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/netns"
)

// otherHostAddr is an address of the fake host that is on no link to a
// sandbox: a sandbox reaches it only with a default route.
var otherHostAddr = netip.MustParseAddr("198.18.0.1")

// testNet is the fake host that the tests' sandboxes get their links and
// forwarded ports on, so that all their traffic stays in namespaces the
// tests made.
var testNet struct {
	once sync.Once
	host *netns.NS
	err  error
}

// testNetworking is the process's network setup in the tests: host sides
// in the fake host, and no pool, whose refills would show up in the leak
// checks as namespaces coming and going.
func testNetworking() NetworkingConfig {
	return NetworkingConfig{Host: testNet.host, PoolSize: -1}
}

// setDefaultNetworking replaces the setup of DefaultNetworking with one of
// cfg, made at once, after closing what the previous one held.
func setDefaultNetworking(cfg NetworkingConfig) error {
	d := DefaultNetworking()
	d.mu.Lock()
	defer d.mu.Unlock()
	mc := cfg.managerConfig()
	if err := mc.Validate(); err != nil {
		return managerConfigErr(err)
	}
	if err := d.closeLocked(); err != nil {
		return err
	}
	m, err := netns.NewManager(mc)
	if err != nil {
		return managerConfigErr(err)
	}
	d.cfg, d.m = cfg, m
	return nil
}

// requireNet skips unless the test may make networks, and sets up the
// fake host once per process (with otherHostAddr on its lo).
func requireNet(t testing.TB) *netns.NS {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireUserNamespaces(t)
	testNet.once.Do(func() {
		var h *netns.NS
		if h, testNet.err = netns.New(); testNet.err != nil {
			return
		}
		testNet.err = h.Do(func() error {
			lo, err := netlink.LinkByIndex(1)
			if err != nil {
				return err
			}
			a := &netlink.Addr{IPNet: &net.IPNet{IP: otherHostAddr.AsSlice(), Mask: net.CIDRMask(32, 32)}}
			return netlink.AddrAdd(lo, a)
		})
		if testNet.err == nil {
			testNet.host = h
			testNet.err = setDefaultNetworking(testNetworking())
		} else {
			h.Close()
		}
	})
	require.NoError(t, testNet.err, "fake host")
	return testNet.host
}

// closeTestNetworking releases the process's network setup and the fake
// host before the leak checks of TestMain.
func closeTestNetworking() {
	if err := DefaultNetworking().Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close networking:", err)
	}
	if testNet.host != nil {
		testNet.host.Close()
	}
}

// greeter serves "hello from host" to every connection on all addresses
// of ns and returns the port; it stops when the test ends.
func greeter(t testing.TB, ns *netns.NS) int {
	t.Helper()
	l, err := ns.Listen("tcp", ":0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from host\n")
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// noNetLeaks checks, when the test ends, that the real host and the fake
// host have the links, addresses and routes they had when it began, and
// that the process holds no more network namespaces. Call it first, so
// that it runs after the test's other cleanups. The kernel removes a dead
// namespace's links in the background, and the manager deletes held ones
// after a second.
func noNetLeaks(t *testing.T) {
	t.Helper()
	host := requireNet(t)
	checks := append(slices.Clone(testutil.NetworkLeakChecks),
		testutil.LeakCheck{Name: "network namespace fd", Snapshot: testutil.NetnsFDs},
		testutil.LeakCheck{Name: "fake host link or address", Snapshot: func() ([]string, error) { return nsLinks(host) }})
	// The namespaces kept ready for sandboxes without a network are the
	// process's, not the test's.
	require.NoError(t, closeIsolatedPool())
	testutil.CheckAfter(t, 5*time.Second, checks...)
	t.Cleanup(func() { closeIsolatedPool() })
}

// nsLinks lists the links of ns with their addresses.
func nsLinks(ns *netns.NS) ([]string, error) {
	var out []string
	err := ns.Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, i := range ifs {
			out = append(out, i.Name)
			addrs, _ := i.Addrs()
			for _, a := range addrs {
				out = append(out, a.String()+" on "+i.Name)
			}
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// connect is a script that prints what a server at host:port says, trying
// for a few seconds while the server may still be starting.
func connect(host string, port int) string {
	return fmt.Sprintf("(for i in $(seq 50); do nc -w 2 %s %d </dev/null && exit 0; sleep 0.1; done; exit 1)", host, port)
}

// tryOnce is a script that connects to host:port once, prints what the
// server says and "reached", or "unreachable" and exits 0 when it cannot.
func tryOnce(host string, port int) string {
	return fmt.Sprintf("nc -w 2 %s %d </dev/null && echo reached || echo unreachable", host, port)
}

// TestNetworkNone: the default sandbox cannot reach a server on the host's
// 127.0.0.1, which a sandbox sharing the host's network reaches.
func TestNetworkNone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan struct{}, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			io.WriteString(c, "hello from host\n")
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port

	out := mustRun(t, shell(t, tryOnce("127.0.0.1", port)))
	assert.Equal(t, "unreachable", strings.TrimSpace(out))
	select {
	case <-accepted:
		t.Error("the host's server accepted a connection from a sandbox without a network")
	default:
	}

	cfg := shell(t, tryOnce("127.0.0.1", port)+"; cat /etc/hosts")
	cfg.Network.ShareHost = true
	out = mustRun(t, cfg)
	assert.Contains(t, out, "hello from host\nreached\n", "ShareHost reaches the host's loopback")
	assert.Contains(t, out, "localhost sandbox")
}

// TestNetworkLink: a sandbox with a link reaches a server of the host on
// its gateway address and nothing else of the host, unless given the
// default route; its files name it.
func TestNetworkLink(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	port := greeter(t, host)
	addr := netip.MustParseAddr("10.213.0.6") // block 1: gateway 10.213.0.5
	script := tryOnce("10.213.0.5", port) + "; " + tryOnce(otherHostAddr.String(), port) +
		"; ip -4 -o addr show eth0; cat /etc/hosts /etc/resolv.conf"
	var stdout, stderr syncBuffer
	cfg := shell(t, script)
	cfg.Hostname = "linked"
	cfg.Stdout, cfg.Stderr = &stdout, &stderr
	cfg.Network = Network{Link: &Link{Addr: addr}, DNS: []netip.Addr{netip.MustParseAddr("10.213.0.5")}}
	sb := New(cfg)
	require.NoError(t, sb.Start(t.Context()))
	_, err := sb.Wait()
	require.NoError(t, err, "%s%s", stdout.String(), stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "hello from host\nreached\nunreachable\n", "the gateway only")
	assert.Contains(t, out, "inet 10.213.0.6/30")
	assert.Contains(t, out, "10.213.0.6\tlinked\n")
	assert.Contains(t, out, "nameserver 10.213.0.5\n")
	info := sb.NetworkInfo()
	assert.Equal(t, []netip.Addr{addr}, info.Addrs)
	assert.Equal(t, netip.MustParseAddr("10.213.0.5"), info.Gateway)
	assert.True(t, strings.HasPrefix(info.HostLink, netns.LinkPrefix), info.HostLink)

	cfg = shell(t, tryOnce(otherHostAddr.String(), port))
	cfg.Network.Link = &Link{DefaultRoute: true}
	out = mustRun(t, cfg)
	assert.Equal(t, "hello from host\nreached\n", out, "with the default route")
}

// TestPrivateNetwork: two sandboxes on one network talk TCP by name; a
// third, on another network, reaches neither them nor the host.
func TestPrivateNetwork(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	hostPort := greeter(t, host)
	cluster, err := DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "cluster", Members: []string{"db", "app"}})
	require.NoError(t, err)
	defer cluster.Close()
	other, err := DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "other"})
	require.NoError(t, err)
	defer other.Close()
	assert.False(t, cluster.Subnet().Overlaps(other.Subnet()))

	bb := testutil.Busybox(t)
	db := New(Config{
		Args:     []string{bb, "nc", "-ll", "-p", "5432", "-e", bb, "echo", "hello from db"},
		Hostname: "db",
		Network:  Network{Networks: []Membership{{Network: "cluster"}}},
	})
	require.NoError(t, db.Start(t.Context()))
	defer db.Close()
	dbAddr := db.NetworkInfo().Addrs[0]
	require.True(t, cluster.Subnet().Contains(dbAddr), "%s in %s", dbAddr, cluster.Subnet())

	cfg := shell(t, connect("db", 5432)+" && grep -w db /etc/hosts")
	cfg.Hostname = "app"
	cfg.Network.Networks = []Membership{{Network: "cluster"}}
	out := mustRun(t, cfg)
	assert.Equal(t, "hello from db\n"+dbAddr.String()+"\tdb\n", out, "app reaches db by name")

	cfg = shell(t, tryOnce(dbAddr.String(), 5432)+"; "+tryOnce(otherHostAddr.String(), hostPort)+"; grep -cw db /etc/hosts; true")
	cfg.Network.Networks = []Membership{{Network: "other", Name: "outsider"}}
	out = mustRun(t, cfg)
	assert.Equal(t, "unreachable\nunreachable\n0\n", out, "another network's member reaches neither db nor the host")
}

// TestExposedPort: a server in a sandbox is reached from the host through
// a forwarded port, picked by the host when asked for port 0.
func TestExposedPort(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	bb := testutil.Busybox(t)
	sb := New(Config{
		Args:    []string{bb, "nc", "-ll", "-p", "8080", "-e", bb, "echo", "served from the sandbox"},
		Network: Network{Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 8080}}},
	})
	require.NoError(t, sb.Start(t.Context()))
	defer sb.Close()
	ports := sb.NetworkInfo().Ports
	require.Len(t, ports, 1)
	require.NotZero(t, ports[0].Port())
	var got string
	for range 50 {
		if got = readFrom(t, host, ports[0].String()); got != "" {
			break
		}
		time.Sleep(100 * time.Millisecond) // the server may still be starting
	}
	assert.Equal(t, "served from the sandbox\n", got)

	// The port is taken while the sandbox runs: another sandbox asking
	// for it fails before anything is made.
	again := New(Config{Args: []string{bb, "true"}, Network: Network{Ports: []Port{{Host: ports[0], Port: 80}}}})
	err := again.Start(t.Context())
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Network.Ports[0].Host", ce.Field)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// readFrom returns what the server at addr in ns says before it closes
// the connection, or "" when it cannot be reached or says nothing.
func readFrom(t *testing.T, ns *netns.NS, addr string) string {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	c, err := ns.Dial(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestNetworkRootDir: a root directory's /etc/hosts and /etc/resolv.conf
// are covered by the generated ones, and left as they are on disk.
func TestNetworkRootDir(t *testing.T) {
	noNetLeaks(t)
	requireNet(t)
	root := testutil.BusyboxRoot(t)
	require.NoError(t, os.WriteFile(root+"/etc/hosts", []byte("own hosts\n"), 0o644))
	require.NoError(t, os.WriteFile(root+"/etc/resolv.conf", []byte("own resolv\n"), 0o644))
	cfg := Config{
		Args:     []string{"/bin/sh", "-c", "cat /etc/hosts /etc/resolv.conf"},
		RootDir:  root,
		Hostname: "rooted",
		Network:  Network{Link: &Link{}, DNS: []netip.Addr{netip.MustParseAddr("10.213.0.1")}},
	}
	out := mustRun(t, cfg)
	assert.Contains(t, out, "\trooted\n")
	assert.Contains(t, out, "nameserver 10.213.0.1\n")
	assert.NotContains(t, out, "own")
	b, err := os.ReadFile(root + "/etc/hosts")
	require.NoError(t, err)
	assert.Equal(t, "own hosts\n", string(b))

	// Without a network, a root directory keeps its own files.
	cfg.Network = Network{}
	assert.Equal(t, "own hosts\nown resolv\n", mustRun(t, cfg))
}

// TestNetworkDNS: name servers go to /etc/resolv.conf with any network;
// a sandbox sharing the host's network gets the host's file by default.
func TestNetworkDNS(t *testing.T) {
	cfg := shell(t, "cat /etc/resolv.conf")
	cfg.Network.DNS = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	assert.Equal(t, "# Generated by stockade.\nnameserver 127.0.0.1\nnameserver ::1\n", mustRun(t, cfg))

	cfg.Network = Network{ShareHost: true}
	want, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		want = nil
	}
	o := run(t, cfg)
	if want == nil {
		assert.Error(t, o.err, "no resolv.conf on the host, none in the sandbox")
	} else {
		assert.Equal(t, string(want), o.stdout)
	}
}

// TestNetworkLinkIPv6: with an IPv6 link subnet, a link has an address of
// each family, and the sandbox reaches its gateway over IPv6.
func TestNetworkLinkIPv6(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	defer func() { require.NoError(t, setDefaultNetworking(testNetworking())) }()
	n := testNetworking()
	n.LinkSubnet6 = netip.MustParsePrefix("fd53:7a6b:1::/64")
	require.NoError(t, setDefaultNetworking(n))
	port := greeter(t, host)
	// Block 2 of both subnets: the gateways are 10.213.0.9 and
	// fd53:7a6b:1::9.
	cfg := shell(t, tryOnce("fd53:7a6b:1::9", port)+"; ip -6 -o addr show eth0 scope global")
	cfg.Network.Link = &Link{Addr: netip.MustParseAddr("10.213.0.10")}
	var out syncBuffer
	cfg.Stdout = &out
	sb := New(cfg)
	require.NoError(t, sb.Start(t.Context()))
	_, err := sb.Wait()
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "hello from host\nreached\n")
	assert.Contains(t, out.String(), "inet6 fd53:7a6b:1::a/126")
	info := sb.NetworkInfo()
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.213.0.10"), netip.MustParseAddr("fd53:7a6b:1::a")}, info.Addrs)
	assert.Equal(t, netip.MustParseAddr("fd53:7a6b:1::9"), info.Gateway6)
}
