//go:build linux

package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/testutil"
)

// The attack suite: one test per row of shared/notes/security.md and per
// attack that issue 4 lists. Each runs the static attack program
// (testdata/attack) in a sandbox, checks that every step failed with the
// errno the defence gives, and checks the host afterwards.

// TestAttackLeakedHostFD is the runc CVE-2024-21626 row: a descriptor of a
// host directory that the caller forgot to mark close-on-exec must not
// reach the sandbox, and one it passes on purpose opens nothing beneath.
func TestAttackLeakedHostFD(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("host only"), 0o644))
	os.Chmod(dir, 0o755)
	host := snapshotHost(t)

	// Opened without O_CLOEXEC, as careless code does.
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	require.NoError(t, err)
	st, o := runAttack(t, attack(t, "fds"))
	syscall.Close(fd)
	require.NoError(t, o.err)
	st.expect(t, map[string]string{"open-fds": "ok", "cwd": "ok"})
	assert.Equal(t, "[]", st["open-fds"][1], "descriptors beyond 0, 1 and 2 reached the command")
	assert.Equal(t, "/work", st["cwd"][1])

	// Passed on purpose as descriptor 3: Landlock keeps the command from
	// opening anything beneath it. The control run without Landlock shows
	// that the attack itself works.
	d, err := os.Open(dir)
	require.NoError(t, err)
	defer d.Close()
	for _, disabled := range []bool{false, true} {
		t.Run("landlock-disabled="+strconv.FormatBool(disabled), func(t *testing.T) {
			cfg := attack(t, "leakdir", "3", "secret")
			cfg.ExtraFiles = []*os.File{d}
			cfg.Security.Landlock.Disabled = disabled
			st, o := runAttack(t, cfg)
			require.NoError(t, o.err)
			want := "EACCES"
			if disabled {
				want = "ok"
			} else {
				requireLandlock(t, 2)
			}
			st.expect(t, map[string]string{"openat": want, "read-relative": want, "read-magic-link": want})
			if !disabled {
				st.expect(t, map[string]string{"openat-parent": "EACCES"})
			}
		})
	}
	host.check(t)
}

// TestAttackPtrace is the CVE-2016-9962 row, and ptrace of a sibling.
func TestAttackPtrace(t *testing.T) {
	host := snapshotHost(t)
	mustAttack(t, attack(t, "ptrace"), map[string]string{
		"attach-init": "EPERM", "attach-sibling": "EPERM", "seize-sibling": "EPERM",
		"process-vm-readv": "EPERM",
	})
	host.check(t)
}

// TestAttackPid1 is the hard rule of the start path: root inside, with
// every capability a Config can keep and no seccomp filter, can neither
// write nor read the memory of pid 1, nor ptrace it, nor take its
// descriptors, nor read anything of the owner through it, nor end it.
//
// The init stage, the fallback start path, is a Go program that such a
// root can ptrace: the test is for the raw path.
func TestAttackPid1(t *testing.T) {
	rawPathOnly(t)
	host := snapshotHost(t)
	cfg := attack(t, "pid1")
	for c := 0; c <= linux.LastCap(); c++ {
		if n := linux.CapName(c); n != "" {
			cfg.Security.Capabilities = append(cfg.Security.Capabilities, n)
		}
	}
	cfg.Security.SeccompUnconfined = true
	st, o := runAttack(t, cfg)
	require.NoError(t, o.err)
	st.expect(t, map[string]string{
		"mem-write": "EACCES", "attach": "EPERM", "seize": "EPERM",
		"vm-writev": "EPERM", "vm-readv": "EPERM", "exe": "EACCES",
		"pidfd-getfd": "EPERM", "alive": "ok",
	})
	// procfs refuses these with EACCES or EPERM, by kernel and caller.
	for _, f := range []string{"environ", "maps", "auxv", "stack", "syscall"} {
		if r := st["read-"+f][0]; r != "EACCES" && r != "EPERM" {
			t.Errorf("read of pid 1's %s: %s, want it refused", f, r)
		}
	}
	// Landlock's signal scope refuses the signal; without it the kernel
	// drops it, pid 1 having no handler.
	if k := st["kill"][0]; k != "ok" && k != "EPERM" {
		t.Errorf("kill of pid 1: %s", k)
	}
	// The command line is pid 1's own, and holds nothing of the owner's.
	if c := st["cmdline"][1]; strings.Contains(c, "/") || strings.Contains(c, ".test") {
		t.Errorf("pid 1's command line %q shows the owner's", c)
	}
	host.check(t)
}

// TestAttackCapabilities is the CVE-2022-29162 row: every set is empty and
// none can be raised, as root inside or not.
func TestAttackCapabilities(t *testing.T) {
	host := snapshotHost(t)
	for _, asRoot := range []bool{true, false} {
		t.Run("root="+strconv.FormatBool(asRoot), func(t *testing.T) {
			cfg := attack(t, "caps")
			cfg.RunAsRoot = asRoot
			st, o := runAttack(t, cfg)
			require.NoError(t, o.err)
			for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
				assert.Equal(t, "0000000000000000", st["status-"+set][1], set)
			}
			assert.Equal(t, "1", st["status-NoNewPrivs"][1])
			assert.Equal(t, "2", st["status-Seccomp"][1])
			st.expect(t, map[string]string{
				"capset-raise": "EPERM", "ambient-raise": "EPERM", "clear-no-new-privs": "EINVAL",
				"raw-socket": "EPERM", "bind-80": "EACCES",
			})
		})
	}
	host.check(t)
}

// TestAttackCgroupfs is the CVE-2023-25809 row.
func TestAttackCgroupfs(t *testing.T) {
	host := snapshotHost(t)
	st := mustAttack(t, attack(t, "cgroupfs"), map[string]string{
		"mount-cgroup2": "EPERM", "mount-cgroup-v1": "EPERM",
		"stat-sys-fs-cgroup": "ENOENT", "write-cgroup-procs": "ENOENT", "proc-self-cgroup": "ok",
	})
	// The cgroup namespace: every hierarchy's root is the sandbox's own.
	for _, f := range strings.Fields(st["proc-self-cgroup"][1]) {
		assert.True(t, strings.HasSuffix(f, ":/"), "cgroup path outside the namespace: %s", f)
	}
	host.check(t)
}

// TestAttackTIOCSTI is the CVE-2017-5226 row: the command's standard input
// is a terminal of the caller's, and it tries to type into it.
func TestAttackTIOCSTI(t *testing.T) {
	master, slave := openPty(t)
	host := snapshotHost(t)
	cfg := attack(t, "tiocsti")
	cfg.Stdin = slave
	st := mustAttack(t, cfg, map[string]string{
		"tiocsti": "EPERM", "tiocsti-high-bits": "EPERM", "tioclinux": "EPERM",
		"own-session": "ok", "controlling-tty": "ENOTTY",
	})
	assert.Equal(t, "true", st["own-session"][1])
	// Nothing was typed: the master has nothing to read.
	fd := int(master.Fd()) // Fd makes it blocking; once only
	require.NoError(t, unix.SetNonblock(fd, true))
	buf := make([]byte, 64)
	n, _ := unix.Read(fd, buf)
	assert.LessOrEqual(t, n, 0, "characters reached the terminal: %q", buf[:max(n, 0)])
	host.check(t)
}

// openPty opens a new pseudo-terminal of the host's devpts.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.Skip(t, "no pseudo-terminals: "+err.Error(), "mount devpts on /dev/pts")
	}
	t.Cleanup(func() { m.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestAttackNestedUserNamespace is the row of kernel surface through user
// namespaces.
func TestAttackNestedUserNamespace(t *testing.T) {
	host := snapshotHost(t)
	mustAttack(t, attack(t, "userns"), map[string]string{
		"unshare-user": "EPERM", "unshare-mount": "EPERM", "unshare-net": "EPERM",
		"clone-newuser": "EPERM", "clone3-newuser": "ENOSYS", "setns": "EPERM",
	})
	host.check(t)
}

// TestAttackSideChannels is the isolate row: kernel objects that
// namespaces do not cover.
func TestAttackSideChannels(t *testing.T) {
	host := snapshotHost(t)
	mustAttack(t, attack(t, "sidechannel"), map[string]string{
		"add_key": "EPERM", "request_key": "EPERM", "keyctl": "EPERM", "vsock": "EPERM",
		"io_uring_setup": "EPERM", "userfaultfd": "EPERM", "bpf": "EPERM",
		"perf_event_open": "EPERM", "kexec_load": "EPERM",
	})
	host.check(t)
}

// TestAttackSecondSandbox: one sandbox leaves a file in /dev/shm and
// listens on an abstract unix socket; a second one, running at the same
// time, reaches neither.
func TestAttackSecondSandbox(t *testing.T) {
	host := snapshotHost(t)
	name := "stockade-attack-" + strconv.Itoa(os.Getpid())
	for _, c := range []struct{ kind, put, get, want string }{
		{"shm", "put", "get", "ENOENT"},
		{"abstract", "listen", "connect", "ECONNREFUSED"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			first := attack(t, c.kind, c.put, name)
			var out syncBuffer
			first.Stdout = &out
			sb := New(testConfig(first))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, sb.Start(ctx))
			defer sb.Kill(unix.SIGKILL)
			require.Eventually(t, func() bool { return strings.Contains(out.String(), "step "+c.put+" ok") }, testDeadline, pollEvery, out.String())
			st := mustAttack(t, attack(t, c.kind, c.get, name), map[string]string{c.get: c.want})
			if c.kind == "shm" {
				assert.Equal(t, "0", st["list"][1], "the second sandbox's /dev/shm is not empty")
			}
			require.NoError(t, sb.Kill(unix.SIGKILL))
			sb.Wait()
		})
	}
	host.check(t)
}

// TestAttackChroot is the classic chroot escape: keep a descriptor of the
// root, chroot into a subdirectory, walk ".." from the descriptor. Without
// CAP_SYS_CHROOT the chroot fails; with it kept, the walk stops at the
// sandbox's own root, since the host's was detached by pivot_root.
func TestAttackChroot(t *testing.T) {
	hostOnly := t.TempDir()
	host := snapshotHost(t)
	st := mustAttack(t, attack(t, "chroot", hostOnly), map[string]string{"chroot": "EPERM"})

	cfg := attack(t, "chroot", hostOnly)
	cfg.Security.Capabilities = []string{"CAP_SYS_CHROOT"}
	st = mustAttack(t, cfg, map[string]string{"chroot": "ok", "fchdir": "ok", "chroot-dot": "ok", "stat-host-path": "ENOENT"})
	entries := strings.Split(st["root-entries"][1], ",")
	assert.Contains(t, entries, "attack", "the walk left the sandbox's root")
	assert.Contains(t, entries, "work")
	host.check(t)
}

// TestAttackMknodAndMount: device nodes and mounts, as root inside.
func TestAttackMknodAndMount(t *testing.T) {
	host := snapshotHost(t)
	mustAttack(t, attack(t, "mknod"), map[string]string{"mknod-block": "EPERM", "mknod-char": "EPERM", "mknod-dev": "EROFS"})
	mustAttack(t, attack(t, "mount"), map[string]string{
		"mount-tmpfs": "EPERM", "bind-remount": "EPERM", "umount-proc": "EPERM",
		"fsopen": "EPERM", "open_tree": "EPERM", "pivot_root": "EPERM",
	})
	host.check(t)
}

// TestAttackProcFiles reads /proc/kcore, /proc/keys and /proc/kallsyms and
// writes core_pattern and sysrq-trigger, as root inside. Files this
// kernel lacks are ENOENT inside too.
func TestAttackProcFiles(t *testing.T) {
	host := snapshotHost(t)
	st, o := runAttack(t, attack(t, "procfiles"))
	require.NoError(t, o.err)
	onHost := func(p, want string) string {
		if _, err := os.Stat(p); err != nil {
			return "ENOENT"
		}
		return want
	}
	st.expect(t, map[string]string{
		"read-kcore":          onHost("/proc/kcore", "ok"),
		"read-keys":           onHost("/proc/keys", "ok"),
		"read-kallsyms":       onHost("/proc/kallsyms", "ok"),
		"read-timer_list":     onHost("/proc/timer_list", "ok"),
		"write-core_pattern":  "EACCES",
		"write-sysrq-trigger": onHost("/proc/sysrq-trigger", "EACCES"),
		"write-hostname":      "EACCES",
		"stat-sys":            "ENOENT",
	})
	for _, f := range []string{"kcore", "keys", "kallsyms", "timer_list"} {
		if s, ok := st["read-"+f]; ok && s[0] == "ok" {
			assert.Equal(t, "0", s[1], "/proc/%s is not masked", f)
		}
	}
	host.check(t)
}

// TestAttackSignalHostPid: a host process, here the test itself and a
// child of it, cannot be signalled or even named from inside.
func TestAttackSignalHostPid(t *testing.T) {
	host := snapshotHost(t)
	for _, pid := range []int{os.Getpid(), os.Getppid()} {
		mustAttack(t, attack(t, "kill", strconv.Itoa(pid)), map[string]string{"kill-0": "ESRCH", "kill-term": "ESRCH", "pidfd_open": "ESRCH"})
	}
	host.check(t)
}

// TestAttackGoRuntimePitfalls is the row of Go runtime pitfalls: a filter
// that killed one thread would leave the rest of a Go program running, so
// a call the policy kills, made from a thread other than the main one,
// must end the whole process; and a call through the i386 ABI (int 0x80),
// which the filter refuses to decode, kills the process too. Both end
// with the Reason SeccompKilled.
func TestAttackGoRuntimePitfalls(t *testing.T) {
	host := snapshotHost(t)
	t.Run("kill-process-from-a-thread", func(t *testing.T) {
		cfg := attack(t, "killthread")
		cfg.Security.SeccompExtend = true
		cfg.Security.Seccomp = &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActKillProcess},
		}}
		st, o := runAttack(t, cfg)
		var ee *ExitError
		require.ErrorAs(t, o.err, &ee)
		assert.Equal(t, SeccompKilled, ee.Reason, ee.String())
		assert.Equal(t, unix.SIGSYS, ee.Signal)
		st.expect(t, map[string]string{"start": "ok"})
		assert.NotContains(t, st, "survived", "the process outlived the thread the filter killed")
	})
	t.Run("i386-abi", func(t *testing.T) {
		if runtime.GOARCH != "amd64" {
			t.Skip("int 0x80 is an amd64 attack")
		}
		st, o := runAttack(t, attack(t, "int80"))
		var ee *ExitError
		require.ErrorAs(t, o.err, &ee)
		assert.Equal(t, SeccompKilled, ee.Reason, ee.String())
		st.expect(t, map[string]string{"start": "ok"})
		assert.NotContains(t, st, "int80", "the i386 system call returned")
	})
	t.Run("control-without-the-kill-rule", func(t *testing.T) {
		mustAttack(t, attack(t, "killthread"), map[string]string{"start": "ok", "survived": "ok"})
	})
	host.check(t)
}

// TestAttackPlantedLandlockLink: a writable bind that a previous run
// filled holds a link to a descriptor of the init, /proc/self/fd/4 (the
// directory the caller passes as ExtraFiles[0]), where a Landlock
// WritablePaths rule is to go. The rule is not sent there: the command
// cannot create anything beneath the passed directory, and the Landlock
// domain is still in force.
func TestAttackPlantedLandlockLink(t *testing.T) {
	requireLandlock(t, 2)
	passed, out := t.TempDir(), t.TempDir()
	require.NoError(t, os.Chmod(passed, 0o777))
	require.NoError(t, os.Chmod(out, 0o777))
	require.NoError(t, os.Symlink("/proc/self/fd/4", filepath.Join(out, "sub")))
	d, err := os.Open(passed)
	require.NoError(t, err)
	defer d.Close()
	host := snapshotHost(t)
	for _, disabled := range []bool{false, true} {
		t.Run("landlock-disabled="+strconv.FormatBool(disabled), func(t *testing.T) {
			cfg := attack(t, "leakwrite", "3", "pwned-"+strconv.FormatBool(disabled))
			cfg.ExtraFiles = []*os.File{d}
			cfg.Mounts = append(cfg.Mounts, Mount{Kind: Bind, Source: out, Target: "/out", Writable: true})
			if disabled {
				// The control run: the attack works where Landlock is off.
				cfg.Security.Landlock.Disabled = true
				mustAttack(t, cfg, map[string]string{"create": "ok"})
				return
			}
			cfg.Security.Landlock.WritablePaths = []string{"/out/sub"}
			cfg.Stdout = &strings.Builder{}
			sb := New(testConfig(cfg))
			require.NoError(t, sb.Start(t.Context()))
			conf := sb.Confinement()
			_, err := sb.Wait()
			require.NoError(t, err)
			assert.True(t, conf.Landlock, "the planted link cost the sandbox its Landlock domain: %v", conf.Notes)
			st := parseSteps(cfg.Stdout.(*strings.Builder).String())
			st.expect(t, map[string]string{"create": "EACCES"})
		})
	}
	dirHolds(t, passed, "pwned-true") // the control run's file only
	host.check(t)
}
