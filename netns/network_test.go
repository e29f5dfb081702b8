//go:build linux

package netns

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// etcFor writes the sandbox's hosts file and resolv.conf and returns the
// helper environment that mounts them on those of /etc.
func etcFor(t *testing.T, n *Net) []string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hosts"), n.HostsFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), n.ResolvConf(), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{etcEnv + "=" + dir}
}

func TestPrivateNetworks(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	a, err := m.NewNetwork(NetworkConfig{Name: "a", Members: []string{"alpha", "beta"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.NewNetwork(NetworkConfig{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	setup := func(cfg Config) *Net {
		t.Helper()
		n, err := m.Setup(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Release() })
		return n
	}
	alpha := setup(Config{Hostname: "alpha", Networks: []Membership{{Network: "a"}}})
	beta := setup(Config{Hostname: "beta", Networks: []Membership{{Network: "a"}}})
	gamma := setup(Config{Hostname: "gamma", Networks: []Membership{{Network: "b"}}})

	// Reserved members get the first addresses, in order, and every hosts
	// file names them all.
	if got, want := alpha.Addrs(), []netip.Addr{netip.MustParseAddr("10.214.0.1")}; !equalAddrs(got, want) {
		t.Errorf("alpha's addresses %v, want %v", got, want)
	}
	if got := string(alpha.HostsFile()); !strings.Contains(got, "10.214.0.2\tbeta\n") || !strings.Contains(got, "10.214.0.1\talpha\n") {
		t.Errorf("alpha's hosts file lacks a member:\n%s", got)
	}
	if a.Subnet() != netip.MustParsePrefix("10.214.0.0/24") {
		t.Errorf("network a has subnet %s", a.Subnet())
	}

	_, port, _ := net.SplitHostPort(serve(t, alpha.NS(), etcFor(t, alpha), ":7000"))
	if got := dial(t, beta.NS(), etcFor(t, beta), net.JoinHostPort("alpha", port)); got != "ok echo ping" {
		t.Errorf("beta dialling alpha by name: %s", got)
	}
	// A member of another network knows neither the name nor a way to
	// the address. Without a name server, the lookup ends at the
	// sandbox's own loopback.
	if got := dial(t, gamma.NS(), etcFor(t, gamma), net.JoinHostPort("alpha", port)); !strings.Contains(got, "lookup alpha on 127.0.0.1:53") && !strings.Contains(got, "lookup alpha on [::1]:53") {
		t.Errorf("gamma dialling alpha by name: %s, want a failed lookup on its own loopback", got)
	}
	if got := dial(t, gamma.NS(), nil, net.JoinHostPort("10.214.0.1", port)); !strings.Contains(got, "network is unreachable") {
		t.Errorf("gamma dialling alpha's address: %s, want network is unreachable", got)
	}

	// A member that leaves and comes back at once under its name gets its
	// reserved address again, and is reached there.
	if err := alpha.Release(); err != nil {
		t.Fatal(err)
	}
	alpha2 := setup(Config{Hostname: "alpha", Networks: []Membership{{Network: "a"}}})
	if got := alpha2.Addrs(); len(got) != 1 || got[0] != a4("10.214.0.1") {
		t.Errorf("alpha back with addresses %v, want 10.214.0.1", got)
	}
	_, port, _ = net.SplitHostPort(serve(t, alpha2.NS(), etcFor(t, alpha2), ":7001"))
	if got := dial(t, beta.NS(), etcFor(t, beta), net.JoinHostPort("alpha", port)); got != "ok echo ping" {
		t.Errorf("beta dialling alpha back: %s", got)
	}

	// A sandbox asked into both networks reaches members of both.
	both := setup(Config{Hostname: "both", Networks: []Membership{{Network: "b"}, {Network: "a"}}})
	if got := dial(t, both.NS(), etcFor(t, both), net.JoinHostPort("alpha", port)); got != "ok echo ping" {
		t.Errorf("a member of both networks dialling alpha: %s", got)
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNetworkLifecycle(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	m := mustManager(t, ManagerConfig{})
	a, err := m.NewNetwork(NetworkConfig{Name: "a", Subnet: netip.MustParsePrefix("10.99.0.0/29")})
	if err != nil {
		t.Fatal(err)
	}
	var fe *ConfigError
	if _, err := m.NewNetwork(NetworkConfig{Name: "a2", Subnet: netip.MustParsePrefix("10.99.0.0/24")}); !errors.As(err, &fe) || fe.Field != "Subnet" {
		t.Errorf("overlapping network: %v, want an error naming Subnet", err)
	}
	if _, err := m.NewNetwork(NetworkConfig{Name: "a"}); !errors.As(err, &fe) || fe.Field != "Name" {
		t.Errorf("duplicate network name: %v, want an error naming Name", err)
	}
	// A /29 holds six members.
	var nets []*Net
	for i := range 6 {
		n, err := m.Setup(Config{Networks: []Membership{{Network: "a", Name: "m" + string(rune('0'+i))}}})
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	if _, err := m.Setup(Config{Networks: []Membership{{Network: "a", Name: "full"}}}); err == nil {
		t.Error("a seventh member joined a /29")
	}
	if _, err := m.Setup(Config{Networks: []Membership{{Network: "a", Name: "m0"}}}); !errors.As(err, &fe) || fe.Field != "Networks[0].Name" {
		t.Errorf("second member of the same name: %v, want an error naming Networks[0].Name", err)
	}
	// Leaving frees the address; closing the network drops the others'
	// links but leaves their Release working.
	if err := nets[0].Release(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the address of a member that left to be freed", func() bool { return len(a.Hosts()) == 5 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Setup(Config{Networks: []Membership{{Network: "a"}}}); !errors.As(err, &fe) || fe.Field != "Networks[0].Network" {
		t.Errorf("joining a closed network: %v, want an error naming Networks[0].Network", err)
	}
	for _, n := range nets[1:] {
		if err := n.Release(); err != nil {
			t.Error(err)
		}
	}
}
