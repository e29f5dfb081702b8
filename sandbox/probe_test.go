//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/testutil"
)

// TestProbe checks each answer of Probe against what the host really
// does, found another way: by trying the feature for real where a test
// can, or from the kernel's own listings.
func TestProbe(t *testing.T) {
	r := Probe()
	t.Logf("\n%s", r)
	assert.Equal(t, os.Geteuid(), r.UID)
	assert.Equal(t, os.Geteuid() == 0, r.Root)

	// User namespaces: create one.
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
	userNS := cmd.Run() == nil
	assert.Equal(t, userNS, r.UserNamespaces.Available, r.UserNamespaces.Detail)

	// The sandbox: run one with a shell and see it work.
	if r.Sandbox.Available {
		assert.Equal(t, []string{"ok"}, lines(mustRun(t, shell(t, "echo ok"))))
	} else {
		o := run(t, shell(t, "true"))
		assert.Error(t, o.err, "Probe says no sandbox starts, yet one did: %s", r.Sandbox.Detail)
	}

	// The start path: a sandbox on the raw path has the reaper as pid 1, a
	// few pages of memory; the init stage is a Go runtime.
	if r.Sandbox.Available {
		vm := strings.Fields(mustRun(t, shell(t, "grep VmSize /proc/1/status")))
		require.Len(t, vm, 3)
		kib, err := strconv.Atoi(vm[1])
		require.NoError(t, err)
		assert.Equal(t, r.RawStart.Available, kib < 1024,
			"Probe says %v (%s); pid 1 maps %d KiB", r.RawStart.Available, r.RawStart.Detail, kib)
	}

	// Subordinate ids: a sandbox that maps them.
	if !r.Root {
		if r.SubordinateIDs.Available {
			cfg := shell(t, "true")
			cfg.SubordinateIDs = true
			mustRun(t, cfg)
		} else {
			cfg := shell(t, "true")
			cfg.SubordinateIDs = true
			o := run(t, cfg)
			assert.ErrorIs(t, o.err, ErrNotSupported)
		}
	} else {
		assert.True(t, r.SubordinateIDs.Available)
	}

	// Landlock: the kernel's list of security modules.
	if lsm, err := os.ReadFile("/sys/kernel/security/lsm"); err == nil {
		has := strings.Contains(","+string(lsm)+",", ",landlock,")
		assert.Equal(t, has, r.Landlock.Available, "lsm list %q", lsm)
		assert.Equal(t, has, r.LandlockABI > 0)
	}

	// Seccomp: the kernel reports a mode for every process when it has it,
	// and a sandbox's command runs filtered (TestPrivilegesDropped).
	status, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	assert.Equal(t, strings.Contains(string(status), "\nSeccomp:"), r.Seccomp.Available, r.Seccomp.Detail)

	// pidfd: a pidfd of a child signals it.
	child := exec.Command("/bin/sleep", "10")
	require.NoError(t, child.Start())
	fd, err := unix.PidfdOpen(child.Process.Pid, 0)
	if err == nil {
		assert.NoError(t, unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0))
		unix.Close(fd)
	} else {
		child.Process.Kill()
	}
	child.Wait()
	assert.Equal(t, err == nil, r.Pidfd.Available, r.Pidfd.Detail)

	// Cgroups: the file system type of /sys/fs/cgroup gives the mode.
	var fs unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &fs) == nil {
		mode := cgroup.Legacy
		var un unix.Statfs_t
		switch {
		case fs.Type == unix.CGROUP2_SUPER_MAGIC:
			mode = cgroup.Unified
		case unix.Statfs("/sys/fs/cgroup/unified", &un) == nil && un.Type == unix.CGROUP2_SUPER_MAGIC:
			mode = cgroup.Hybrid
		}
		assert.Equal(t, mode.String(), r.CgroupMode)
		if mode != cgroup.Unified {
			assert.False(t, r.MemoryPeak.Available, "cgroup v1 has no memory.peak")
		}
	}
	if r.Root {
		assert.True(t, r.Cgroups.Available, r.Cgroups.Detail)
	}

	// Overlayfs: mount one in a user and mount namespace of our own.
	overlay := tryOverlay(t)
	assert.Equal(t, overlay == nil, r.Overlayfs.Available, "mount: %v; probe: %s", overlay, r.Overlayfs.Detail)

	// Time namespaces: a sandbox with one.
	if r.Sandbox.Available {
		cfg := shell(t, "true")
		cfg.TimeNamespace = true
		o := run(t, cfg)
		assert.Equal(t, o.err == nil, r.TimeNamespaces.Available, "run: %v; probe: %s", o.err, r.TimeNamespaces.Detail)
	}

	// The report reads as a table and travels as JSON.
	s := r.String()
	for _, name := range []string{"sandbox", "user namespaces", "subordinate ids", "cgroups", "landlock", "seccomp", "pidfd", "memory.peak", "overlayfs", "time namespaces"} {
		assert.Regexp(t, `(?m)^  `+name+` +(yes|no ) `, s)
	}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"landlockABI":`)
}

// tryOverlay mounts an overlay in a new user and mount namespace, with
// busybox, and returns why it failed.
func tryOverlay(t *testing.T) error {
	t.Helper()
	bb := testutil.Busybox(t)
	dir := t.TempDir()
	script := fmt.Sprintf(`set -e
		mount --make-rprivate /
		mount -t tmpfs none %[1]s
		mkdir %[1]s/l %[1]s/u %[1]s/w %[1]s/m
		echo lower > %[1]s/l/f
		mount -t overlay none -o lowerdir=%[1]s/l,upperdir=%[1]s/u,workdir=%[1]s/w%[2]s %[1]s/m
		echo upper > %[1]s/m/f
		cat %[1]s/l/f %[1]s/u/f`, dir, map[bool]string{true: "", false: ",userxattr"}[os.Geteuid() == 0])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bb, "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	if string(out) != "lower\nupper\n" {
		return fmt.Errorf("the overlay did not copy up: %q", out)
	}
	return nil
}

func TestKernelAtLeast(t *testing.T) {
	assert.True(t, linux.KernelAtLeast(2, 6))
	assert.False(t, linux.KernelAtLeast(1000, 0))
}
