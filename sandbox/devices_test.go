//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/testutil"
)

// deviceDir makes a directory of character device nodes that anyone may
// open (mode 0666), named by their numbers, for binding into a sandbox:
// fuse (10:229), tun (10:200) and loop-control (10:237), harmless to
// open without the ioctls that would use them.
func deviceDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "stockade-devices-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	for _, n := range [][2]uint32{{10, 229}, {10, 200}, {10, 237}} {
		p := filepath.Join(dir, fmt.Sprintf("%d-%d", n[0], n[1]))
		require.NoError(t, unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n[0], n[1]))))
		require.NoError(t, os.Chmod(p, 0o666))
	}
	return dir
}

// deviceRulesConfig is a sandbox with an allow list that also denies
// /dev/null, which the sandbox's own /dev holds, and binds the nodes of
// deviceDir at /devs: 10:229 allowed, 10:200 denied by name, 10:237 not
// named. Its command tries to open each and prints what happened.
func deviceRulesConfig(t *testing.T) Config {
	cfg := shell(t, `for d in /dev/null /dev/zero /dev/full /dev/urandom /devs/10-229 /devs/10-200 /devs/10-237; do
		if true <"$d"; then echo "$d open"; else echo "$d denied"; fi
	done 2>&1; echo ready; exec sleep 100`)
	cfg.Mounts = []Mount{{Kind: Bind, Source: deviceDir(t), Target: "/devs", Device: true}}
	cfg.Limits.Devices = []cgroup.DeviceRule{
		{Type: "a", Major: cgroup.AnyDevice, Minor: cgroup.AnyDevice, Access: "rwm"},
		{Allow: true, Type: "c", Major: 10, Minor: 229, Access: "rwm"},
		{Type: "c", Major: 1, Minor: 3, Access: "rwm"},
		{Type: "c", Major: 10, Minor: 200, Access: "rwm"},
	}
	return cfg
}

// TestDeviceRules: on cgroup v1 the rules of Limits.Devices apply in
// order, the sandbox's own device nodes stay allowed whatever they say
// (/dev/null included), a device bound with Mount.Device that a rule
// denies cannot be opened, one it allows can, and one it does not name
// stays allowed; devices.list shows the caller's rules first; the group
// goes with the sandbox. On cgroup v2 Start refuses the field.
func TestDeviceRules(t *testing.T) {
	requireCgroup(t)
	bothPaths(t, func(t *testing.T) {
		cfg := deviceRulesConfig(t)
		if cgroup.DetectMode() == cgroup.Unified {
			err := New(cfg).Start(context.Background())
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "Limits.Devices", ce.Field)
			assert.ErrorIs(t, err, ErrNotSupported)
			return
		}
		var out syncBuffer
		cfg.Stdout = &out
		sb := New(testConfig(cfg))
		require.NoError(t, sb.Start(context.Background()))
		defer sb.Kill(syscall.SIGKILL)
		waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
		assert.Equal(t, []string{
			"/dev/null open", "/dev/zero open", "/dev/full open", "/dev/urandom open",
			"/devs/10-229 open",
			"sh: can't open /devs/10-200: Operation not permitted", "/devs/10-200 denied",
			"/devs/10-237 open", "ready",
		}, lines(out.String()))

		list, err := os.ReadFile(devicesDir(t, pid1(sb)) + "/devices.list")
		require.NoError(t, err)
		assert.Equal(t, []string{
			"c 10:229 rwm",                                                  // the caller's
			"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", // the sandbox's own
			"c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm",
			"c 10:237 rwm", // bound, and named by no rule
		}, lines(string(list)))

		require.NoError(t, sb.Kill(syscall.SIGKILL))
		sb.Wait()
		assertNoGroup(t, sb)
	})
}

// devicesDir returns the directory of pid's group in the devices
// hierarchy.
func devicesDir(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	for l := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(l), ":", 3)
		if len(f) == 3 && f[1] == "devices" {
			return "/sys/fs/cgroup/devices" + f[2]
		}
	}
	t.Fatalf("process %d is in no devices group: %s", pid, b)
	return ""
}

// TestDeviceRulesRefusedBeforeStart: a bad rule is a ConfigError naming
// it, before anything exists.
func TestDeviceRulesRefusedBeforeStart(t *testing.T) {
	requireCgroup(t)
	cfg := Config{Args: []string{"/bin/true"}, Limits: Limits{Devices: []cgroup.DeviceRule{
		{Type: "a", Major: cgroup.AnyDevice, Minor: cgroup.AnyDevice, Access: "rwm"},
		{Allow: true, Type: "c", Major: 1, Minor: 3, Access: "rw"},
		{Allow: true, Type: "c", Major: 1, Minor: 5, Access: "rwx"},
	}}}
	var ce *ConfigError
	require.ErrorAs(t, cfg.Validate(), &ce)
	assert.Equal(t, "Limits.Devices[2].Access", ce.Field)
	sb := New(cfg)
	require.ErrorAs(t, sb.Start(context.Background()), &ce)
	assert.Equal(t, "Limits.Devices[2].Access", ce.Field)
	assert.Nil(t, sb.lim)
}

// TestCPUPeriodLimit: Limits.CPUPeriod sets the group's CFS period, with
// CPU's quota over it.
func TestCPUPeriodLimit(t *testing.T) {
	requireCgroup(t)
	testutil.RequireUserNamespaces(t)
	sb := New(testConfig(Config{Args: []string{testutil.Busybox(t), "sleep", "100"},
		Limits: Limits{CPU: 0.5, CPUPeriod: 20 * time.Millisecond}}))
	require.NoError(t, sb.Start(context.Background()))
	defer sb.Kill(syscall.SIGKILL)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid1(sb)))
	require.NoError(t, err)
	files := map[string]string{"cpu.cfs_period_us": "20000", "cpu.cfs_quota_us": "10000"}
	prefix := "/sys/fs/cgroup/cpu"
	want := "cpu"
	if cgroup.DetectMode() == cgroup.Unified {
		files = map[string]string{"cpu.max": "10000 20000"}
		prefix, want = "/sys/fs/cgroup", ""
	}
	var dir string
	for l := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(l), ":", 3)
		if len(f) == 3 && (f[1] == want || strings.Contains(","+f[1]+",", ",cpu,")) {
			dir = prefix + f[2]
		}
	}
	require.NotEmpty(t, dir, "%s", b)
	for file, v := range files {
		got, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		assert.Equal(t, v, strings.TrimSpace(string(got)), file)
	}
	require.NoError(t, sb.Kill(syscall.SIGKILL))
	sb.Wait()
	assertNoGroup(t, sb)
}

// BenchmarkRunDeviceRules is BenchmarkRun with an allow list of device
// rules: what the devices hierarchy (a mkdir, the rules, a move, an
// rmdir) adds to a start on cgroup v1.
func BenchmarkRunDeviceRules(b *testing.B) {
	testutil.RequireRoot(b)
	if cgroup.DetectMode() == cgroup.Unified {
		b.Skip("device rules need cgroup v1; this host runs v2")
	}
	benchRun(b, Config{Args: []string{"/bin/true"}, Limits: Limits{Devices: []cgroup.DeviceRule{
		{Type: "a", Major: cgroup.AnyDevice, Minor: cgroup.AnyDevice, Access: "rwm"},
		{Allow: true, Type: "c", Major: 10, Minor: 229, Access: "rwm"},
	}}})
}

// TestNodes makes device nodes and a FIFO with Mount{Kind: Node}: each
// shows inside with its type, numbers, permissions and owner; the FIFO
// carries data; on cgroup v1, with rules that deny every other device, a
// node no rule names opens (fuse, 10:229) and one a rule denies (tun,
// 10:200) does not. The nodes live in a tmpfs of the sandbox's: nothing
// of them is left on the host (the leak check of every test).
func TestNodes(t *testing.T) {
	testutil.RequireRoot(t)
	bothPaths(t, func(t *testing.T) {
		cfg := shell(t, `
			stat -c '%n %F %t:%T %a %u:%g' /dev/myfuse /dev/tun /dev/blk /tmp/fifo
			for d in /dev/myfuse /dev/tun; do
				if true <"$d"; then echo "$d open"; else echo "$d denied"; fi
			done 2>/dev/null
			echo through >/tmp/fifo &
			read -r l </tmp/fifo; echo "fifo $l"`)
		cfg.Mounts = []Mount{
			{Kind: Node, Target: "/dev/myfuse", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Rdev: unix.Mkdev(10, 229)},
			{Kind: Node, Target: "/dev/tun", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o620, Rdev: unix.Mkdev(10, 200), UID: 1000, GID: 5},
			{Kind: Node, Target: "/dev/blk", Mode: fs.ModeDevice | 0o600, Rdev: unix.Mkdev(7, 200)},
			{Kind: Node, Target: "/tmp/fifo", Mode: fs.ModeNamedPipe | 0o666, UID: 1000, GID: 1000},
		}
		mode := cgroup.DetectMode()
		rules := mode != cgroup.Unified && mode != cgroup.Unavailable
		if rules {
			cfg.Limits.Devices = []cgroup.DeviceRule{
				{Type: "a", Major: cgroup.AnyDevice, Minor: cgroup.AnyDevice, Access: "rwm"},
				{Type: "c", Major: 10, Minor: 200, Access: "rwm"},
			}
		}
		out := lines(mustRun(t, cfg))
		want := []string{
			"/dev/myfuse character special file a:e5 666 0:0",
			"/dev/tun character special file a:c8 620 1000:5",
			"/dev/blk block special file 7:c8 600 0:0",
			"/tmp/fifo fifo 0:0 666 1000:1000",
		}
		// A kernel without fuse or tun opens neither, rules or not.
		opens := func(ok bool) string {
			if ok {
				return "open"
			}
			return "denied"
		}
		want = append(want, "/dev/myfuse "+opens(deviceOpens(t, 10, 229)), "/dev/tun "+opens(!rules && deviceOpens(t, 10, 200)))
		assert.Equal(t, append(want, "fifo through"), out)
	})
}

// deviceOpens reports whether a node of the character device
// major:minor opens on this host, outside any sandbox.
func deviceOpens(t *testing.T, major, minor uint32) bool {
	p := filepath.Join(t.TempDir(), "node")
	require.NoError(t, unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(major, minor))))
	f, err := os.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		t.Logf("%d:%d does not open here: %v", major, minor, err)
		return false
	}
	f.Close()
	return true
}

// TestNodeRefused: a Node's type must be a device or a FIFO, a FIFO has
// no device number, and only host root makes nodes.
func TestNodeRefused(t *testing.T) {
	for _, tc := range []struct {
		m     Mount
		field string
	}{
		{Mount{Kind: Node, Target: "/dev/x", Mode: 0o666}, "Mounts[0].Mode"},
		{Mount{Kind: Node, Target: "/dev/x", Mode: fs.ModeDir | 0o755}, "Mounts[0].Mode"},
		{Mount{Kind: Node, Target: "/dev/x", Mode: fs.ModeNamedPipe | 0o600, Rdev: 5}, "Mounts[0].Rdev"},
		{Mount{Kind: Node, Target: "/dev/x", Mode: fs.ModeDevice | fs.ModeSetuid | 0o600}, "Mounts[0].Mode"},
		{Mount{Kind: Tmpfs, Target: "/x", Rdev: 5}, "Mounts[0].Rdev"},
	} {
		cfg := shell(t, "true")
		cfg.Mounts = []Mount{tc.m}
		want := tc.field
		if os.Geteuid() != 0 {
			want = "Mounts[0].Kind"
			if tc.m.Kind != Node {
				want = tc.field
			}
		}
		var ce *ConfigError
		require.ErrorAs(t, cfg.Validate(), &ce, "%+v", tc.m)
		assert.Equal(t, want, ce.Field, "%+v", tc.m)
	}
}
