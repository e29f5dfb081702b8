//go:build linux

package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// roleEnv names the part a re-executed copy of this test binary plays. The
// copy does its work in TestMain and exits without running any test.
const roleEnv = testutil.HelperEnv

const cgroupRoot = "/sys/fs/cgroup"

func TestMain(m *testing.M) {
	testutil.Run(m, testutil.Options{
		Helper: role,
		Setup:  func() error { startPoller(); return nil },
	})
}

// role plays the part roleEnv names.
func role(role string) int {
	switch role {
	case "memhog":
		memhog()
	case "pivot":
		if err := overlayPivot(); err != nil {
			fmt.Fprintln(os.Stderr, "overlay and pivot_root:", err)
			return 1
		}
		fmt.Println("pivot ok")
		return 0
	}
	fmt.Fprintf(os.Stderr, "%s=%s: unknown role\n", roleEnv, role)
	return 2
}

// TestRequire checks that a VM-only test skips on the host, also under
// STOCKADE_REQUIRE_PRIVILEGED=1, and runs inside the VM.
func TestRequire(t *testing.T) {
	skipped := true
	t.Run("vm-only", func(t *testing.T) {
		Require(t)
		skipped = false
	})
	if skipped == InVM() {
		t.Fatalf("Require skipped the test: %v, but %s=%q", skipped, Env, os.Getenv(Env))
	}
}

// TestCgroup2Hierarchy checks that the unified hierarchy is mounted at
// /sys/fs/cgroup with nsdelegate and the controllers stockade uses enabled
// for children of the root.
func TestCgroup2Hierarchy(t *testing.T) {
	Require(t)
	testutil.RequireRoot(t)
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Fatalf("%s has file system magic %#x, want cgroup2 (%#x)", cgroupRoot, st.Type, unix.CGROUP2_SUPER_MAGIC)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(cgroupRoot))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 {
		t.Fatalf("%d mounts at %s, want 1", len(mounts), cgroupRoot)
	}
	if opts := mounts[0].Options + "," + mounts[0].VFSOptions; !slices.Contains(strings.Split(opts, ","), "nsdelegate") {
		t.Errorf("%s is mounted without nsdelegate: %s", cgroupRoot, opts)
	}
	enabled := strings.Fields(readFile(t, filepath.Join(cgroupRoot, "cgroup.subtree_control")))
	for _, c := range []string{"cpu", "cpuset", "memory", "pids", "io"} {
		if !slices.Contains(enabled, c) {
			t.Errorf("controller %s is not enabled in the root's cgroup.subtree_control (%v)", c, enabled)
		}
	}
	if got := readFile(t, "/proc/self/cgroup"); got != "0::/\n" {
		t.Errorf("/proc/self/cgroup = %q, want the root of a v2-only hierarchy", got)
	}
}

// TestPidsMaxWithCloneIntoCgroup starts processes straight into a group
// whose pids.max is 5 (CLONE_INTO_CGROUP, so the test binary's own threads
// stay outside) and checks that the sixth is refused with EAGAIN.
func TestPidsMaxWithCloneIntoCgroup(t *testing.T) {
	Require(t)
	testutil.RequireRoot(t)
	bb := testutil.Busybox(t)
	cg := newCgroup(t, "pids")
	writeFile(t, filepath.Join(cg, "pids.max"), "5")
	fd := openCgroup(t, cg)

	start := func() (*exec.Cmd, error) {
		cmd := exec.Command(bb, "sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd, nil
	}
	want := "0::/" + filepath.Base(cg) + "\n"
	for i := range 5 {
		cmd, err := start()
		if err != nil {
			t.Fatalf("process %d of 5: %v", i+1, err)
		}
		if got := readFile(t, fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid)); got != want {
			t.Fatalf("process %d is in %q, want %q", i+1, got, want)
		}
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(cg, "pids.current"))); got != "5" {
		t.Errorf("pids.current = %s, want 5", got)
	}
	if got := readFile(t, "/proc/self/cgroup"); got != "0::/\n" {
		t.Errorf("the test process moved to %q; CLONE_INTO_CGROUP should have left it in the root", got)
	}
	_, err := start()
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("sixth process: err = %v, want EAGAIN from pids.max", err)
	}
	if n := keyedValue(t, filepath.Join(cg, "pids.events"), "max"); n < 1 {
		t.Errorf("pids.events max = %d, want at least 1", n)
	}
}

// TestMemoryMaxOOMKill runs a process that allocates without bound in a
// group with a small memory.max and checks that the kernel's OOM killer ends
// it and counts the kill in memory.events.
func TestMemoryMaxOOMKill(t *testing.T) {
	Require(t)
	testutil.RequireRoot(t)
	cg := newCgroup(t, "memory")
	writeFile(t, filepath.Join(cg, "memory.max"), strconv.Itoa(32<<20))
	if _, err := os.Stat(filepath.Join(cg, "memory.swap.max")); err == nil {
		writeFile(t, filepath.Join(cg, "memory.swap.max"), "0")
	}
	fd := openCgroup(t, cg)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, selfExe(t))
	cmd.Env = append(os.Environ(), roleEnv+"=memhog")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("memory hog: err = %v, want it killed; output:\n%s", err, out)
	}
	ws := exitErr.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("memory hog ended with %v, want SIGKILL from the OOM killer; output:\n%s", exitErr, out)
	}
	if n := keyedValue(t, filepath.Join(cg, "memory.events"), "oom_kill"); n < 1 {
		t.Errorf("memory.events oom_kill = %d, want at least 1", n)
	}
}

// TestUserPidMountNamespaces runs a shell as root of new user, pid and mount
// namespaces, mapped onto an unprivileged host uid, and checks what it sees.
func TestUserPidMountNamespaces(t *testing.T) {
	Require(t)
	testutil.RequireRoot(t)
	bb := testutil.Busybox(t)
	const script = `
echo pid=$$
echo uid=$(id -u)
set -- $(cat /proc/self/uid_map)
echo "uid_map=$*"
mount -t tmpfs scratch /mnt && echo tmpfs=ok
mount -t proc proc /proc && echo proc=ok
[ -e /proc/$HOSTPID ] && echo host=visible || echo host=hidden
`
	cmd := exec.Command(bb, "sh", "-c", script)
	cmd.Env = []string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin", "HOSTPID=" + strconv.Itoa(os.Getpid())}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 1}},
		// Become root of the new namespace: host root is not mapped in it,
		// and execve would drop the capabilities of an unmapped uid.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	for _, want := range []string{"pid=1", "uid=0", "uid_map=0 100000 1", "tmpfs=ok", "proc=ok", "host=hidden"} {
		if !slices.Contains(lines, want) {
			t.Errorf("want %q in the output:\n%s", want, out)
		}
	}
	mounted, err := mountinfo.Mounted("/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if mounted {
		t.Error("the tmpfs mounted inside the mount namespace is visible on /mnt outside")
	}
}

// TestOverlayAndPivotRoot checks, in a child in a new mount namespace, that
// overlayfs (a module in this kernel) mounts and that pivot_root works, which
// it does not while / is the initramfs.
func TestOverlayAndPivotRoot(t *testing.T) {
	Require(t)
	testutil.RequireRoot(t)
	cmd := exec.Command(selfExe(t))
	cmd.Env = append(os.Environ(), roleEnv+"=pivot")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "pivot ok" {
		t.Fatalf("err = %v; output:\n%s", err, out)
	}
}

// TestGuestRoot checks the parts of the guest's root file system that
// sandboxes binding host directories rely on, and that the modules the
// runner packed are loaded.
func TestGuestRoot(t *testing.T) {
	Require(t)
	root, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter("/"))
	if err != nil {
		t.Fatal(err)
	}
	if len(root) != 1 || root[0].FSType != "tmpfs" {
		t.Errorf("/ is %+v, want a tmpfs (pivot_root fails on the initramfs)", root)
	}
	testutil.Busybox(t)
	for _, p := range []string{"/bin/sh", "/bin/true", "/usr/bin/env", "/sbin", "/lib", "/etc/passwd"} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Errorf("/bin/true: %v", err)
	}
	if !strings.Contains(readFile(t, "/proc/filesystems"), "\toverlay\n") {
		t.Error("overlay is not in /proc/filesystems")
	}
	for _, m := range strings.Fields(readFile(t, "/stockade-vm/modules")) {
		name := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(m), ".ko"), "-", "_")
		if _, err := os.Stat("/sys/module/" + name); err != nil {
			t.Errorf("module %s is not loaded: %v", name, err)
		}
	}
}

// startPoller makes the Go runtime create its poller's epoll and eventfd
// descriptors now. The first file a process opens creates them, and when
// that happens inside testutil.Main, between its descriptor snapshot and the
// end of the tests, the leak check reports them as leaked.
func startPoller() {
	if f, err := os.Open("/proc/self/stat"); err == nil {
		f.Close()
	}
}

// newCgroup creates a child of the root cgroup for one test and removes it,
// with anything still in it, when the test ends.
func newCgroup(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(cgroupRoot, fmt.Sprintf("stockade-vmtest-%s-%d", name, os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("removing %s: %v", dir, err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return dir
}

// openCgroup opens a cgroup directory for CLONE_INTO_CGROUP. The fd is
// closed when the test ends.
func openCgroup(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// keyedValue returns the value of key in a flat keyed cgroup file such as
// memory.events.
func keyedValue(t *testing.T, path, key string) int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, key, err)
			}
			return n
		}
	}
	t.Fatalf("%s has no %s", path, key)
	return 0
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatal(err)
	}
}

func selfExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// memhog allocates and touches memory until something stops it. Under a
// memory.max it is the OOM killer.
func memhog() {
	var hoard [][]byte
	for range 4096 {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hoard = append(hoard, b)
	}
	fmt.Fprintf(os.Stderr, "allocated %d MiB without being stopped\n", len(hoard))
	os.Exit(3)
}

// overlayPivot runs in a child in its own mount namespace: it mounts an
// overlay on a fresh tmpfs, makes it the root with pivot_root, and checks
// what the new root holds.
func overlayPivot() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	base, err := os.MkdirTemp("", "pivot")
	if err != nil {
		return err
	}
	if err := unix.Mount("scratch", base, "tmpfs", 0, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(base, "lower", "from-lower"), []byte("lower"), 0o644); err != nil {
		return err
	}
	merged := filepath.Join(base, "merged")
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", base, base, base)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	if err := os.WriteFile(filepath.Join(merged, "from-upper"), []byte("upper"), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(base, "upper", "from-upper")); err != nil {
		return fmt.Errorf("a write to the overlay did not reach the upper layer: %w", err)
	}
	if err := os.Mkdir(filepath.Join(merged, "old"), 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot(merged, filepath.Join(merged, "old")); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/old", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	if err := os.Remove("/old"); err != nil {
		return err
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"from-lower", "from-upper"}) {
		return fmt.Errorf("the new root holds %v, want [from-lower from-upper]", names)
	}
	return nil
}
