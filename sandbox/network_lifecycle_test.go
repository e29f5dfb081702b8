//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/netns"
)

// TestNetworkBadInput: each mistake is a *ConfigError naming the field,
// from Validate and from Start, and nothing is left behind.
func TestNetworkBadInput(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	taken, err := host.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenAddr := taken.Addr().(*net.TCPAddr).AddrPort()
	nw, err := DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "bad-input", Subnet: netip.MustParsePrefix("10.214.7.0/24")})
	require.NoError(t, err)
	defer nw.Close()
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name  string
		net   Network
		field string
		start bool // only Start can tell
	}{
		{"unknown network", Network{Networks: []Membership{{Network: "nope"}}}, "Network.Networks[0].Network", false},
		{"address outside the subnet", Network{Networks: []Membership{{Network: "bad-input", Addr: netip.MustParseAddr("10.214.8.1")}}}, "Network.Networks[0].Addr", false},
		{"link address outside the link subnet", Network{Link: &Link{Addr: netip.MustParseAddr("192.168.0.2")}}, "Network.Link.Addr", false},
		{"IPv6 without a subnet", Network{Link: &Link{Addr6: netip.MustParseAddr("fd00::2")}}, "Network.Link.Addr6", false},
		{"host and a link", Network{ShareHost: true, Link: &Link{}}, "Network.Link", false},
		{"port zero inside", Network{Ports: []Port{{Host: ap("127.0.0.1:0")}}}, "Network.Ports[0].Port", false},
		{"port taken", Network{Ports: []Port{{Host: ap("127.0.0.1:0"), Port: 1}, {Host: takenAddr, Port: 2}}}, "Network.Ports[1].Host", true},
		{"bad DNS", Network{DNS: []netip.Addr{{}}}, "Network.DNS[0]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Args: []string{"/bin/true"}, Network: tc.net}
			err := cfg.Validate()
			if !tc.start {
				var ce *ConfigError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tc.field, ce.Field, "%v", err)
			} else {
				require.NoError(t, err)
			}
			err = New(cfg).Start(t.Context())
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field, "%v", err)
		})
	}

	// Overlapping subnets.
	_, err = DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "overlap", Subnet: netip.MustParsePrefix("10.214.7.128/25")})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Subnet", ce.Field, "%v", err)
	_, err = DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "on-links", Subnet: netip.MustParsePrefix("10.213.4.0/24")})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Subnet", ce.Field, "%v", err)
	_, err = DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "bad-input"})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Name", ce.Field, "%v", err)
	// A link subnet that the host uses is refused.
	_, err = NewNetworking(NetworkingConfig{Host: host, PoolSize: -1, LinkSubnet: netip.MustParsePrefix("198.18.0.0/24")})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "LinkSubnet", ce.Field, "%v", err)
}

// TestNetworkOrdinaryUser: an ordinary user's sandbox may share the
// host's network but not have a link, networks or ports.
func TestNetworkOrdinaryUser(t *testing.T) {
	testutil.RequireNonRoot(t)
	for _, n := range []Network{{Link: &Link{}}, {Networks: []Membership{{Network: "x"}}}, {Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 1}}}} {
		cfg := Config{Args: []string{"/bin/true"}, Network: n}
		var ce *ConfigError
		require.ErrorAs(t, cfg.Validate(), &ce)
		assert.True(t, strings.HasPrefix(ce.Field, "Network."), ce.Field)
		assert.Contains(t, ce.Error(), "host root")
	}
	_, err := DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "x"})
	assert.ErrorIs(t, err, ErrNotSupported)
	cfg := shell(t, "ip -o link | grep -c ': lo:'")
	cfg.Network.ShareHost = true
	assert.Equal(t, "1\n", mustRun(t, cfg))
}

// netOwnerEnv makes the test binary a process that owns a sandbox with a
// link whose host side is in the fake host it inherits as descriptor 3,
// prints the host side's name, and waits to be killed.
const netOwnerEnv = testutil.HelperEnv

func netOwnerHelper() bool {
	if os.Getenv(netOwnerEnv) != "net-owner" {
		return false
	}
	host, err := netns.Open("/proc/self/fd/3")
	var n *Networking
	if err == nil {
		n, err = NewNetworking(NetworkingConfig{Host: host, PoolSize: -1, LinkSubnet: netip.MustParsePrefix("10.215.0.0/24")})
	}
	sb := New(Config{Args: []string{os.Getenv("STOCKADE_TEST_BUSYBOX"), "sleep", "1000"}, Network: Network{Link: &Link{}, Networking: n}})
	if err == nil {
		err = sb.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("link", sb.NetworkInfo().HostLink)
	select {}
}

// TestNetworkOwnerKilled: when the sandbox's owner is killed, the host side
// of its link goes with the sandbox.
func TestNetworkOwnerKilled(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	fd, err := os.Open("/proc/self/fd/" + strconv.Itoa(host.Fd()))
	require.NoError(t, err)
	defer fd.Close()
	owner, fields := startNetOwner(t, fd)
	require.Equal(t, "link", fields[0])
	links, err := nsLinks(host)
	require.NoError(t, err)
	require.Contains(t, links, fields[1], "the owner's link is on the fake host")
	require.NoError(t, owner.Process.Kill())
	owner.Wait()
	require.Eventually(t, func() bool {
		links, err := nsLinks(host)
		return err == nil && !slices.Contains(links, fields[1])
	}, 10*time.Second, 20*time.Millisecond, "the host side %s outlived its owner", fields[1])
}

// TestNetworkPool: a Networking of the caller's own, with a pool of ready
// namespaces, gives the sandboxes that name it their links from its own
// subnet, and its Close leaves no namespace behind.
func TestNetworkPool(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	before, err := testutil.NetnsFDs()
	require.NoError(t, err)
	n, err := NewNetworking(NetworkingConfig{Host: host, PoolSize: 2, LinkSubnet: netip.MustParsePrefix("10.216.0.0/24")})
	require.NoError(t, err)
	for range 3 {
		cfg := shell(t, "ip -4 -o addr show eth0 | grep -c 'inet 10.216.0.'")
		cfg.Network.Link = &Link{}
		cfg.Network.Networking = n
		assert.Equal(t, "1\n", mustRun(t, cfg))
	}
	require.NoError(t, n.Close())
	after, err := testutil.NetnsFDs()
	require.NoError(t, err)
	assert.Equal(t, before, after, "namespaces held after Networking.Close")
}

// startNetOwner starts netOwnerHelper with the fake host as its descriptor
// 3, and returns it and the words of the line it printed.
func startNetOwner(t *testing.T, host *os.File) (*exec.Cmd, []string) {
	t.Helper()
	owner := exec.Command("/proc/self/exe")
	owner.Env = append(os.Environ(), netOwnerEnv+"=net-owner", "STOCKADE_TEST_BUSYBOX="+testutil.Busybox(t))
	owner.ExtraFiles = []*os.File{host}
	owner.Stderr = os.Stderr
	stdout, err := owner.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, owner.Start())
	t.Cleanup(func() {
		owner.Process.Kill()
		owner.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	fields := strings.Fields(line)
	require.Len(t, fields, 2, line)
	return owner, fields
}

// TestPoolNetwork: a pool's sandboxes may have a link each, but not a
// place on a network or forwarded ports.
func TestPoolNetwork(t *testing.T) {
	for _, n := range []Network{{Networks: []Membership{{Network: "x"}}}, {Ports: []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 1}}}} {
		_, err := NewPool(Config{Network: n}, 1)
		var ce *ConfigError
		if n.Networks == nil {
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "Network.Ports", ce.Field)
		} else {
			require.ErrorAs(t, err, &ce)
			assert.True(t, strings.HasPrefix(ce.Field, "Network.Networks"), ce.Field)
		}
	}
	noNetLeaks(t)
	requireNet(t)
	p, err := NewPool(Config{Network: Network{Link: &Link{}}}, 1)
	require.NoError(t, err)
	defer p.Close()
	var out strings.Builder
	_, err = p.Run(t.Context(), Cmd{Args: []string{testutil.Busybox(t), "sh", "-c", "ip -4 -o addr show eth0 | grep -c 'inet 10.213.'"}, Stdout: &out})
	require.NoError(t, err)
	assert.Equal(t, "1\n", out.String())
}

// TestNetworkStartFails: when a start fails after the network was
// prepared, the network goes with it: links, memberships and host ports.
func TestNetworkStartFails(t *testing.T) {
	noNetLeaks(t)
	host := requireNet(t)
	nw, err := DefaultNetworking().NewPrivateNetwork(PrivateNetworkConfig{Name: "fails", Members: []string{"m"}})
	require.NoError(t, err)
	defer nw.Close()
	port, err := host.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := port.Addr().(*net.TCPAddr).AddrPort()
	port.Close()
	cfg := Config{
		Args:     []string{"/no/such/command"},
		Hostname: "m",
		Network: Network{
			Link:     &Link{Addr: netip.MustParseAddr("10.213.0.14")},
			Networks: []Membership{{Network: "fails"}},
			Ports:    []Port{{Host: addr, Port: 80}},
		},
	}
	for range 2 { // the same address, name and port again
		err := New(cfg).Start(t.Context())
		var se *SetupError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "exec", se.Stage)
	}
	l, err := host.Listen("tcp", addr.String())
	require.NoError(t, err, "the host port is free again")
	l.Close()
}
