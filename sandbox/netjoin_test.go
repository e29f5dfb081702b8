//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/netns"
)

// TestNetworkJoin: with Network.Join the sandbox is in that namespace (its
// inode, its links), on both start paths, and holds no capability over it:
// bringing a link up fails, and the link is still down afterwards. A path
// that is no network namespace is a *ConfigError naming Network.Join, and
// so are the settings that need a namespace of the sandbox's own.
func TestNetworkJoin(t *testing.T) {
	testutil.RequireRoot(t)
	ns, err := netns.New()
	require.NoError(t, err)
	t.Cleanup(func() { ns.Close() })
	require.NoError(t, ns.Do(func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "join0"}, PeerName: "join1"})
	}))
	path := fmt.Sprintf("/proc/self/fd/%d", ns.Fd())
	inode, err := os.Readlink(path)
	require.NoError(t, err)
	bb := testutil.Busybox(t)
	bothPaths(t, func(t *testing.T) {
		// Root inside, keeping CAP_NET_ADMIN, which changes links of a
		// namespace of the sandbox's own (the control) but not of this one.
		cfg := shell(t, `grep -o join0 /proc/net/dev; readlink /proc/self/ns/net
			`+bb+` ip link set join0 up 2>/dev/null && echo up || echo refused`)
		cfg.RunAsRoot, cfg.UID, cfg.GID = true, 0, 0
		cfg.Security.Capabilities = []string{"CAP_NET_ADMIN"}
		own := cfg
		own.Args = []string{bb, "sh", "-c", bb + " ip link set lo down && echo changed"}
		assert.Equal(t, []string{"changed"}, lines(mustRun(t, own)))
		cfg.Network.Join = path
		assert.Equal(t, []string{"join0", inode, "refused"}, lines(mustRun(t, cfg)))

		// A long-lived sandbox's later processes are there too, root
		// inside included.
		cfg.Args = nil
		sb := New(cfg)
		require.NoError(t, sb.Start(testCtx(t)))
		defer sb.Close()
		out, err := execRoot(t, sb, `readlink /proc/self/ns/net; `+bb+` ip link set join0 up 2>/dev/null && echo up || echo refused`)
		require.NoError(t, err, out)
		assert.Equal(t, []string{inode, "refused"}, lines(out))
	})
	require.NoError(t, ns.Do(func() error {
		l, err := netlink.LinkByName("join0")
		if err != nil {
			return err
		}
		if l.Attrs().Flags&net.FlagUp != 0 {
			return errors.New("join0 is up")
		}
		return nil
	}))

	// Not a network namespace (a FIFO with no writer must not block the
	// start); the host's own, which is ShareHost.
	fifo := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	for _, p := range []string{"/proc/self/ns/ipc", fifo, "/proc/1/ns/net", "/proc/self/ns/net"} {
		cfg := shell(t, "true")
		cfg.Network.Join = p
		var ce *ConfigError
		require.ErrorAs(t, New(cfg).Start(testCtx(t)), &ce, p)
		assert.Equal(t, "Network.Join", ce.Field, p)
	}

	for _, tc := range []struct {
		field string
		edit  func(c *Config)
	}{
		{"Network.Join", func(c *Config) { c.Network.Join = "run/netns/x" }},
		{"Network.Join", func(c *Config) { c.Network.ShareHost = true }},
		{"Network.Join", func(c *Config) { c.Network.ReuseNamespace = true }},
		{"Network.Join", func(c *Config) { c.Security.Sysfs = true }},
		{"Sysctl[net.ipv4.ip_forward]", func(c *Config) { c.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"} }},
	} {
		cfg := shell(t, "true")
		cfg.Network.Join = path
		tc.edit(&cfg)
		var ce *ConfigError
		require.ErrorAs(t, cfg.Validate(), &ce, tc.field)
		assert.Equal(t, tc.field, ce.Field)
	}
}
