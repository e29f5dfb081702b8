//go:build linux

package sandbox

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/netns"
)

// TestIsolatedNamespacesFromThePool: with the pool on, sandboxes without
// a network started by root take ready namespaces from it, each its own (six held at
// once see six namespaces, none the host's), with lo up and nothing else;
// with the pool off (the default), or capabilities kept, the clone makes
// the namespace.
func TestIsolatedNamespacesFromThePool(t *testing.T) {
	testutil.RequireRoot(t)
	t.Setenv(netnsPoolEnv, "1")
	host, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	require.NoError(t, closeIsolatedPool())
	mustRun(t, shell(t, "true"))
	mustRun(t, shell(t, "true")) // the second start makes the pool
	pool := func() *netns.Pool {
		isolated.mu.Lock()
		defer isolated.mu.Unlock()
		return isolated.pool
	}
	deadline := time.Now().Add(10 * time.Second)
	for (pool() == nil || pool().Ready() < isolatedPoolSize) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.NotNil(t, pool(), "no pool of isolated namespaces for root")
	require.Equal(t, isolatedPoolSize, pool().Ready(), "the pool did not fill")

	netnsOf := func(sb *Sandbox) (string, string) {
		out, _, err := execSh(t, sb, "readlink /proc/self/ns/net; ip -o link | cut -d' ' -f2,3")
		require.NoError(t, err, out)
		ns, links, _ := strings.Cut(out, "\n")
		return ns, links
	}
	before := isolated.taken.Load()
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		sb := longLived(t, Config{})
		ns, links := netnsOf(sb)
		assert.NotEqual(t, host, ns, "sandbox %d is in the host's network namespace", i)
		assert.False(t, seen[ns], "sandbox %d shares namespace %s with another", i, ns)
		seen[ns] = true
		assert.Equal(t, "lo: <LOOPBACK,UP,LOWER_UP>\n", links, "sandbox %d", i)
	}
	assert.GreaterOrEqual(t, isolated.taken.Load()-before, int64(isolatedPoolSize), "the sandboxes did not take the pool's namespaces")

	// Made by the clone: the pool is not touched.
	before = isolated.taken.Load()
	sb := longLived(t, Config{Security: Security{Capabilities: []string{"CAP_NET_ADMIN"}}})
	ns, links := netnsOf(sb)
	assert.False(t, seen[ns])
	assert.Equal(t, "lo: <LOOPBACK,UP,LOWER_UP>\n", links)
	// Its own namespace: the capability it kept applies to it.
	out, _, err := execSh(t, sb, "ip link set lo down && ip -o link | cut -d' ' -f2,3")
	require.NoError(t, err, out)
	assert.Equal(t, "lo: <LOOPBACK>\n", out)
	t.Setenv(netnsPoolEnv, "")
	mustRun(t, shell(t, "true"))
	assert.Equal(t, before, isolated.taken.Load(), "a namespace was taken from the pool")
}

// TestReuseNamespace: sandboxes with Network.ReuseNamespace run one after
// the other in the same namespace, which nothing they do can change (lo
// stays up); sandboxes running at once, and those that do not opt in, get
// namespaces of their own. The option is refused where it cannot hold.
func TestReuseNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	require.NoError(t, closeIsolatedPool())
	t.Cleanup(func() { closeIsolatedPool() })
	run := func(reuse bool, script string) string {
		cfg := shell(t, "readlink /proc/self/ns/net; "+script)
		cfg.Network.ReuseNamespace = reuse
		return mustRun(t, cfg)
	}
	first := run(true, "ip link set lo down 2>/dev/null && echo down; ip -o link | cut -d' ' -f2,3")
	ns, rest, _ := strings.Cut(first, "\n")
	assert.Equal(t, "lo: <LOOPBACK,UP,LOWER_UP>\n", rest, "a sandbox changed its namespace")
	reused := reusable.reused.Load()
	for i := 0; i < 3; i++ {
		out := run(true, "ip -o link | cut -d' ' -f2,3")
		assert.Equal(t, ns+"\nlo: <LOOPBACK,UP,LOWER_UP>\n", out, "run %d", i)
	}
	assert.Equal(t, reused+3, reusable.reused.Load())
	assert.NotEqual(t, ns+"\n", run(false, ""), "a sandbox that did not opt in got a used namespace")

	// Two at once: two namespaces, both kept afterwards.
	a := longLived(t, Config{Network: Network{ReuseNamespace: true}})
	b := longLived(t, Config{Network: Network{ReuseNamespace: true}})
	nsA, _, err := execSh(t, a, "readlink /proc/self/ns/net")
	require.NoError(t, err)
	nsB, _, err := execSh(t, b, "readlink /proc/self/ns/net")
	require.NoError(t, err)
	assert.NotEqual(t, nsA, nsB)
	require.NoError(t, a.Close())
	a.Wait()
	require.NoError(t, b.Close())
	b.Wait()
	reusable.mu.Lock()
	kept := len(reusable.nss)
	reusable.mu.Unlock()
	assert.Equal(t, 2, kept)

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"ShareHost", Config{Network: Network{ShareHost: true, ReuseNamespace: true}}},
		{"Link", Config{Network: Network{Link: &Link{}, ReuseNamespace: true}}},
		{"Capabilities", Config{Network: Network{ReuseNamespace: true}, Security: Security{Capabilities: []string{"CAP_NET_ADMIN"}}}},
		{"Sysfs", Config{Network: Network{ReuseNamespace: true}, Security: Security{Sysfs: true}}},
	} {
		cfg := tc.cfg
		cfg.Args = []string{"/bin/true"}
		_, err := New(cfg).Run(context.Background())
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, tc.name)
		assert.Equal(t, "Network.ReuseNamespace", ce.Field, tc.name)
	}
}
