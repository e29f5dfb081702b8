package sandbox

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/netns"
)

// TestIsolatedNamespacesFromThePool: sandboxes without a network started
// by root take ready namespaces from the pool, each its own (six held at
// once see six namespaces, none the host's), with lo up and nothing else;
// with the pool off, or capabilities kept, the clone makes the namespace.
func TestIsolatedNamespacesFromThePool(t *testing.T) {
	testutil.RequireRoot(t)
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
	t.Setenv(netnsPoolEnv, "0")
	mustRun(t, shell(t, "true"))
	assert.Equal(t, before, isolated.taken.Load(), "a namespace was taken from the pool")
}
