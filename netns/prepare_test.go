//go:build linux

package netns

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestPrepareThenConnect starts a server in a sandbox's namespace between
// Prepare and Connect, as the sandbox package does, and reaches it through
// the link and the forwarded port once Connect has returned. Before
// Connect, the addresses and the hosts file are final but no link exists.
func TestPrepareThenConnect(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	host, _ := fakeHost(t)
	m := mustManager(t, ManagerConfig{Host: host})
	nw, err := m.NewNetwork(NetworkConfig{Name: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := m.Prepare(Config{
		Hostname: "srv",
		Link:     &Link{},
		Networks: []Membership{{Network: nw.Name()}},
		Ports:    []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 7}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Release()
	addrs := n.Addrs()
	if len(addrs) != 2 || !nw.Subnet().Contains(addrs[1]) {
		t.Fatalf("Addrs before Connect = %v, want a link address and one in %s", addrs, nw.Subnet())
	}
	if hosts := string(n.HostsFile()); !strings.Contains(hosts, addrs[0].String()+"\tsrv") {
		t.Errorf("hosts file before Connect lacks its own name:\n%s", hosts)
	}
	if len(ourLinks(t, host)) != 0 {
		t.Errorf("a link exists on the host before Connect")
	}
	srv := serve(t, n.NS(), nil, ":7")
	if !strings.HasSuffix(srv, ":7") {
		t.Fatalf("server listens on %s", srv)
	}
	if err := n.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := n.Connect(); err == nil {
		t.Error("a second Connect succeeded")
	}
	gw, _ := n.Gateway()
	c, err := host.Dial(t.Context(), "tcp", net.JoinHostPort(addrs[0].String(), "7"))
	if err != nil {
		t.Fatalf("dial the sandbox from its gateway %s: %v", gw, err)
	}
	c.Close()
	if got := dialHost(t, host, n.Ports()[0].String()); got != "echo ping" {
		t.Errorf("through the forwarded port: %q", got)
	}
}

// dialHost sends a line to addr from inside ns and returns the answer.
func dialHost(t *testing.T, ns *NS, addr string) string {
	t.Helper()
	c, err := ns.Dial(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	k, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(string(buf[:k]))
}

// TestReleaseBeforeConnect releases a prepared network that was never
// connected: its host port, addresses and namespace go, and the addresses
// can be had again.
func TestReleaseBeforeConnect(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	host := newNS(t)
	m := mustManager(t, ManagerConfig{Host: host})
	nw, err := m.NewNetwork(NetworkConfig{Name: "rb", Members: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Hostname: "a",
		Link:     &Link{Addr: netip.MustParseAddr("10.213.0.2")},
		Networks: []Membership{{Network: nw.Name()}},
		Ports:    []Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 80}},
	}
	for range 2 {
		n, err := m.Prepare(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if p := n.Ports(); len(p) != 1 || p[0].Port() == 0 {
			t.Errorf("Ports before Connect = %v, want the bound port", p)
		}
		if err := n.Release(); err != nil {
			t.Fatal(err)
		}
		if err := n.Connect(); !errors.Is(err, ErrClosed) {
			t.Errorf("Connect after Release: %v, want ErrClosed", err)
		}
	}
}

func TestOpen(t *testing.T) {
	ns, err := Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Error(err)
	}
	if _, err := Open("/proc/self/ns/uts"); err == nil {
		t.Error("Open accepted a uts namespace")
	}
	if _, err := Open("/nonexistent"); err == nil {
		t.Error("Open accepted a missing file")
	}
}

func TestManagerConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		mc    ManagerConfig
		cfg   Config
		field string
	}{
		{ManagerConfig{}, Config{Networks: []Membership{{Network: "nope"}}}, "Networks[0].Network"},
		{ManagerConfig{}, Config{Link: &Link{Addr: netip.MustParseAddr("10.1.0.2")}}, "Link.Addr"},
		{ManagerConfig{LinkSubnet: netip.MustParsePrefix("10.1.0.0/24")}, Config{Link: &Link{Addr: netip.MustParseAddr("10.1.0.6")}}, ""},
		{ManagerConfig{}, Config{Link: &Link{Addr6: netip.MustParseAddr("fd00::2")}}, "Link.Addr6"},
		{ManagerConfig{LinkSubnet: netip.MustParsePrefix("10.1.0.1/24")}, Config{}, "LinkSubnet"},
	} {
		err := tc.mc.Check(tc.cfg)
		var fe *ConfigError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%+v: %v, want an error about %s", tc.cfg, err, tc.field)
		}
	}
}
