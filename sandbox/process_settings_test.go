//go:build linux

package sandbox

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// TestProcessSettings checks the settings an OCI spec's process and linux
// sections ask for: supplementary groups, umask, OOM score, soft rlimits,
// RLIMIT_DATA and sysctls of the sandbox's own namespaces, each seen from
// inside.
func TestProcessSettings(t *testing.T) {
	testutil.RequireRoot(t) // supplementary groups and a lower OOM score
	umask := fs.FileMode(0o027)
	cfg := shell(t, `
		id -G
		umask
		cat /proc/self/oom_score_adj
		ulimit -Sn; ulimit -Hn
		ulimit -Sd; ulimit -Hd
		cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni
		grep NoNewPrivs /proc/self/status`)
	cfg.UID, cfg.GID = 10, 10
	cfg.Groups = []int{5, 7}
	cfg.Umask = &umask
	cfg.Limits.OOMScoreAdj = 500
	cfg.Limits.Rlimits.NoFile = 4000
	cfg.Limits.SoftRlimits.NoFile = 3000
	cfg.Limits.Rlimits.Data = 6 << 30
	cfg.Limits.SoftRlimits.Data = 5 << 30
	cfg.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel/shmmni": "1000"}
	cfg.Security.AllowNewPrivileges = true
	assert.Equal(t, []string{
		"10 5 7", "0027", "500", "3000", "4000",
		"5242880", "6291456", // KiB
		"1", "1000", "NoNewPrivs:\t0",
	}, lines(mustRun(t, cfg)))

	// The host's settings are untouched.
	host, err := os.ReadFile("/proc/sys/kernel/shmmni")
	require.NoError(t, err)
	assert.NotEqual(t, "1000", strings.TrimSpace(string(host)))
}

// TestProcessSettingsRefused checks that settings the sandbox cannot
// honour are refused by name before anything starts.
func TestProcessSettingsRefused(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Sysctl[vm.swappiness]", func(c *Config) { c.Sysctl = map[string]string{"vm.swappiness": "1"} }},
		{"Sysctl[kernel.hostname]", func(c *Config) { c.Sysctl = map[string]string{"kernel.hostname": "x"} }},
		{"Sysctl[net.ipv4.ip_forward]", func(c *Config) {
			c.Network.ShareHost = true
			c.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}},
		{"Sysctl[net/../../x]", func(c *Config) { c.Sysctl = map[string]string{"net/../../x": "1"} }},
		{"Groups[1]", func(c *Config) { c.Groups = []int{1, -1} }},
		{"Umask", func(c *Config) { m := fs.ModeSetuid | 0o22; c.Umask = &m }},
		{"Limits.OOMScoreAdj", func(c *Config) { c.Limits.OOMScoreAdj = 1001 }},
		{"Limits.SoftRlimits.NoFile", func(c *Config) { c.Limits.SoftRlimits.NoFile = 100 }},
		{"Limits.SoftRlimits.NoFile", func(c *Config) {
			c.Limits.Rlimits.NoFile = 100
			c.Limits.SoftRlimits.NoFile = 200
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			cfg := Config{Args: []string{"/bin/true"}}
			tc.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, tc.field, ce.Field)
		})
	}
}

// TestMountSources checks the sources the mount table shows for the
// sandbox's own file systems, as runc names them, their order (/sys after
// /dev), /dev/mqueue, and masked and read-only paths given as Mounts.
func TestMountSources(t *testing.T) {
	cfg := shell(t, `
		awk '{ for (i = 7; $i != "-"; i++) ; print $5, $(i+1), $(i+2) }' /proc/self/mountinfo
		cat /etc/hostname 2>&1 >/dev/null || echo masked-unreadable
		test -s /etc/hostname || echo masked-empty
		touch /tmp/ro/x 2>/dev/null || echo ro`)
	cfg.Mqueue = true
	cfg.Security.Sysfs = true
	cfg.Mounts = []Mount{
		{Kind: Tmpfs, Source: "cache", Target: "/tmp/ro", Size: 1 << 20, Mode: 0o777},
		{Kind: Mask, Target: "/etc/hostname"},
		{Kind: ReadOnlyPath, Target: "/tmp/ro"},
	}
	out := lines(mustRun(t, cfg))
	var order []string
	src := map[string]string{}
	for _, l := range out {
		f := strings.Fields(l)
		if len(f) == 3 {
			order = append(order, f[0])
			src[f[0]] = f[1] + " " + f[2]
		}
	}
	for target, want := range map[string]string{
		"/proc": "proc proc", "/dev": "tmpfs tmpfs", "/dev/pts": "devpts devpts",
		"/dev/shm": "tmpfs shm", "/dev/mqueue": "mqueue mqueue", "/sys": "sysfs sysfs",
		"/tmp": "tmpfs tmpfs", "/tmp/ro": "tmpfs cache",
	} {
		assert.Equal(t, want, src[target], target)
	}
	index := func(s string) int {
		for i, o := range order {
			if o == s {
				return i
			}
		}
		return -1
	}
	assert.Less(t, index("/dev/shm"), index("/dev/mqueue"))
	assert.Less(t, index("/dev/mqueue"), index("/sys"), "/sys after /dev, as in a spec")
	assert.Contains(t, out, "masked-empty")
	assert.Contains(t, out, "ro")
}

// TestIDMapGIDSize checks a group range of another size than the user
// range.
func TestIDMapGIDSize(t *testing.T) {
	testutil.RequireRoot(t)
	cfg := shell(t, `cat /proc/self/uid_map /proc/self/gid_map`)
	cfg.IDMap = IDMap{HostUID: 1 << 29, HostGID: 1 << 29, Size: 2000, GIDSize: 3000}
	var got [][]string
	for _, l := range lines(mustRun(t, cfg)) {
		got = append(got, strings.Fields(l))
	}
	assert.Equal(t, [][]string{{"0", "536870912", "2000"}, {"0", "536870912", "3000"}}, got)

	cfg.GID = 2500
	cfg.UID = 2500
	var ce *ConfigError
	require.ErrorAs(t, cfg.Validate(), &ce)
	assert.Equal(t, "IDMap.Size", ce.Field)
}

// TestMountOrder checks that the mount table lists the sandbox's mounts in
// the order of its plan, binds among them: a bind's source is cloned
// before any mount is made, and the kernel lists mounts in the order they
// were made, so a bind placed after a tmpfs is cloned again where it is
// placed. The copies keep their settings (read-only, writable), and the
// first clones leave nothing in the mount table.
func TestMountOrder(t *testing.T) {
	// A directory the sandbox's user may write in: as root, its own
	// through an idmapped bind, in one the sandbox may not enter; for an
	// ordinary user (whose sandbox may have subordinate ids), anyone's.
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(dir, 4321, 4321))
	} else {
		require.NoError(t, os.Chmod(dir, 0o777))
	}
	cfg := shell(t, `
		awk '{ print $5 }' /proc/self/mountinfo
		touch /tmp/b/x 2>/dev/null && echo b-writable
		touch /tmp/d/x && echo d-writable`)
	cfg.Mounts = []Mount{
		{Kind: Tmpfs, Target: "/tmp/a", Size: 1 << 20},
		{Kind: Bind, Source: "/etc", Target: "/tmp/b"},
		{Kind: Bind, Source: "/etc", Target: "/tmp/b2"},
		{Kind: Tmpfs, Target: "/tmp/c", Size: 1 << 20},
		{Kind: Bind, Source: dir, Target: "/tmp/d", Writable: true},
	}
	want := []string{"/proc", "/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
		"/dev/urandom", "/dev/tty", "/dev/pts", "/dev/shm", "/tmp", "/tmp/a", "/tmp/b", "/tmp/b2", "/tmp/c", "/tmp/d"}
	o := run(t, cfg)
	if errors.Is(o.err, ErrNotSupported) && os.Geteuid() == 0 {
		// A kernel that cannot idmap the directory's file system (tmpfs
		// before 6.3): bind it as it is, writable by anyone.
		t.Logf("%v: binding it as it is", o.err)
		require.NoError(t, os.Chmod(dir, 0o777))
		cfg.Mounts[4].NoIDMap = true
		o = run(t, cfg)
	}
	require.NoError(t, o.err, "stdout:\n%s\nstderr:\n%s", o.stdout, o.stderr)
	out := lines(o.stdout)
	var got []string
	for _, l := range out {
		if slices.Contains(want, l) {
			got = append(got, l)
		}
	}
	assert.Equal(t, want, got, "mount table:\n%s", strings.Join(out, "\n"))
	assert.NotContains(t, out, "/etc", "a first clone of /etc left in the mount table")
	assert.NotContains(t, out, dir, "a first clone left in the mount table")
	assert.NotContains(t, out, "b-writable")
	assert.Contains(t, out, "d-writable")
	_, err := os.Stat(filepath.Join(dir, "x"))
	assert.NoError(t, err, "the writable bind's file on the host")
}
