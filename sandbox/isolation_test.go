//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

func TestPIDNamespace(t *testing.T) {
	out := mustRun(t, shell(t, `
		echo self $$
		for d in /proc/[0-9]*; do echo "proc ${d#/proc/} $(cat $d/comm)"; done`))
	var procs []string
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if f[0] == "proc" {
			procs = append(procs, f[1]+" "+f[2])
		}
	}
	// pid 1 is the init (the reaper on the raw path); the shell and its
	// children are the only others.
	require.NotEmpty(t, procs)
	assert.Regexp(t, `^1 (exe|memfd:stockade-)$`, procs[0], "pid 1 inside must be the sandbox's init")
	for _, p := range procs[1:] {
		assert.Regexp(t, `^\d+ (busybox|sh|cat)$`, p, "a process inside the sandbox that it did not start")
	}
	// The host's own pid 1 is not the sandbox's.
	hostInit, err := os.ReadFile("/proc/1/comm")
	require.NoError(t, err)
	assert.NotEqual(t, strings.TrimSpace(string(hostInit)), "exe")
}

func TestHostFilesInvisible(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host only"), 0o644))
	home, _ := os.UserHomeDir()
	out := mustRun(t, shell(t, fmt.Sprintf(`
		for p in %s %s /etc/shadow /root /home /var /boot /run /sys /opt; do
			test -e "$p" && echo "visible $p"
		done
		ls /; echo; ls /etc`, secret, home)))
	assert.NotContains(t, out, "visible")
	root := strings.Fields(strings.Split(out, "\n\n")[0])
	assert.ElementsMatch(t, expectedRoot(), root)
	assert.Contains(t, out, "passwd")
	assert.NotContains(t, out, "shadow")
}

// expectedRoot lists the top level of the default root on this host.
func expectedRoot() []string {
	names := []string{"dev", "etc", "proc", "tmp", "work"}
	for _, p := range []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if _, err := os.Lstat("/" + p); err == nil {
			names = append(names, p)
		}
	}
	return names
}

func TestReadOnlySystemAndBinds(t *testing.T) {
	ro, rw := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ro, "f"), []byte("data"), 0o644))
	os.Chmod(ro, 0o777)
	os.Chmod(rw, 0o777)
	cfg := shell(t, `
		for p in /usr/x /bin/x /etc/x /x /dev/x /data/x /data/f; do
			(echo hi > $p) 2>/dev/null && echo "wrote $p"
		done
		cat /data/f; echo
		echo out > /out/created && echo "wrote /out"
		echo tmp > /tmp/t && echo tmp > /work/w && echo "wrote scratch"`)
	cfg.Mounts = []Mount{
		{Kind: "bind", Source: ro, Target: "/data"},
		{Kind: "bind", Source: rw, Target: "/out", Writable: true},
	}
	out := mustRun(t, cfg)
	assert.Equal(t, []string{"data", "wrote /out", "wrote scratch"}, lines(out))
	b, err := os.ReadFile(filepath.Join(rw, "created"))
	require.NoError(t, err, "a write through a writable bind must reach the host")
	assert.Equal(t, "out\n", string(b))
	fi, err := os.Stat(filepath.Join(rw, "created"))
	require.NoError(t, err)
	// The file belongs to the sandbox user's host id, not to host root.
	st := fi.Sys().(*syscall.Stat_t)
	if os.Geteuid() == 0 {
		// The slot of root's range that the sandbox leased.
		assert.Equal(t, uint32(DefaultUID), slotOffset(t, rootIDMap().HostUID, st.Uid))
		assert.Equal(t, uint32(DefaultUID), slotOffset(t, rootIDMap().HostGID, st.Gid))
	} else {
		wantUID, wantGID := commandHostIDs(t, cfg)
		assert.Equal(t, wantUID, st.Uid)
		assert.Equal(t, wantGID, st.Gid)
	}
}

func TestHostnameIsolated(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	cfg := shell(t, `hostname; hostname other 2>/dev/null && hostname; cat /etc/hostname`)
	cfg.Hostname = "judge-7"
	cfg.RunAsRoot = true
	out := mustRun(t, cfg)
	// Root inside has no CAP_SYS_ADMIN, so it cannot rename the sandbox either.
	assert.Equal(t, []string{"judge-7", "judge-7"}, lines(out))
	after, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, host, after)
}

func TestOnlyLoopback(t *testing.T) {
	out := mustRun(t, shell(t, `tail -n +3 /proc/net/dev | cut -d: -f1; cat /proc/net/route | wc -l`))
	l := lines(out)
	assert.Equal(t, []string{"lo", "1"}, l, "only lo, and no routes")
	// lo is up: something can listen on and connect to 127.0.0.1, on a
	// port Landlock allows.
	// The client tries until the listener is up, however slow the machine;
	// the exchange is tried again when busybox's listener, whose stdin
	// ends at once, quit before the data came (it does, now and then).
	cfg := shell(t, `
		for i in $(seq 50); do
			nc -l -p 7000 > /tmp/got &
			l=$!
			for j in $(seq 50); do
				echo ping | nc 127.0.0.1 7000 2>/dev/null && break
				sleep 0.05
			done
			wait $l 2>/dev/null
			grep -q ping /tmp/got && break
			kill $l 2>/dev/null
		done
		cat /tmp/got`)
	cfg.Security.Landlock.BindTCP = []uint16{7000}
	cfg.Security.Landlock.ConnectTCP = []uint16{7000}
	out = mustRun(t, cfg)
	assert.Equal(t, "ping\n", out)
}

func TestNoIDMapsToHostRoot(t *testing.T) {
	for _, asRoot := range []bool{false, true} {
		t.Run(fmt.Sprintf("root=%v", asRoot), func(t *testing.T) {
			cfg := shell(t, `
				cat /proc/self/uid_map /proc/self/gid_map
				id -u
				(echo '|/tmp/x' > /proc/sys/kernel/core_pattern) 2>/dev/null && echo "wrote core_pattern"
				true`)
			cfg.RunAsRoot = asRoot
			before, err := os.ReadFile("/proc/sys/kernel/core_pattern")
			require.NoError(t, err)
			out := mustRun(t, cfg)
			l := lines(out)
			// One line per map entry (two each with subordinate ids), then
			// the uid.
			require.GreaterOrEqual(t, len(l), 3)
			for _, m := range l[:len(l)-1] {
				f := strings.Fields(m)
				require.Len(t, f, 3)
				host, _ := strconv.Atoi(f[1])
				size, _ := strconv.Atoi(f[2])
				assert.NotZero(t, host, "host id 0 is mapped: %s", m)
				assert.Greater(t, host, 0)
				assert.Positive(t, size)
			}
			want := "1000"
			if asRoot {
				want = "0"
			}
			assert.Equal(t, want, l[len(l)-1])
			after, err := os.ReadFile("/proc/sys/kernel/core_pattern")
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after))
		})
	}
}

func TestDev(t *testing.T) {
	out := mustRun(t, shell(t, `
		ls /dev | tr '\n' ' '; echo
		echo x > /dev/null && echo null-ok
		head -c 4 /dev/zero | wc -c
		head -c 4 /dev/urandom | wc -c
		(echo x > /dev/full) 2>/dev/null || echo full-ok
		(touch /dev/new) 2>/dev/null || echo dev-ro
		echo shm > /dev/shm/x && cat /dev/shm/x
		readlink /dev/ptmx; readlink /dev/fd`))
	l := lines(out)
	require.GreaterOrEqual(t, len(l), 9, out)
	devs := strings.Fields(l[0])
	want := []string{"fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
	assert.ElementsMatch(t, want, devs)
	assert.Equal(t, []string{"null-ok", "4", "4", "full-ok", "dev-ro", "shm", "pts/ptmx", "/proc/self/fd"}, l[1:])
}

func TestProcMasked(t *testing.T) {
	cfg := shell(t, `
		for f in /proc/kcore /proc/keys /proc/timer_list; do
			test -e $f || continue; test -s $f && echo "$f has data"; cat $f | wc -c
		done | sort | uniq
		ls /proc/acpi 2>/dev/null | wc -l
		(echo x > /proc/sys/kernel/hostname) 2>/dev/null || echo sys-ro
		(echo b > /proc/sysrq-trigger) 2>/dev/null || echo sysrq-ro
		test -r /proc/meminfo && echo meminfo`)
	cfg.RunAsRoot = true
	out := mustRun(t, cfg)
	assert.Equal(t, []string{"0", "0", "sys-ro", "sysrq-ro", "meminfo"}, lines(out))
}

func TestDynamicBinary(t *testing.T) {
	// Programs from the host's /usr, dynamically linked, run as they are.
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls on this host")
	}
	out := mustRun(t, Config{Args: []string{ls, "-1", "/"}})
	assert.ElementsMatch(t, expectedRoot(), lines(out))
	out = mustRun(t, Config{Args: []string{"ls", "-d", "/work"}})
	assert.Equal(t, "/work\n", out, "a bare command name is found in PATH inside")
}

func TestEnvironmentClean(t *testing.T) {
	t.Setenv("STOCKADE_HOST_SECRET", "leak")
	out := mustRun(t, shell(t, `env | sort; pwd; cat /proc/1/environ 2>&1 | wc -c`))
	l := lines(out)
	assert.NotContains(t, out, "STOCKADE_HOST_SECRET")
	assert.Contains(t, l, "PATH="+DefaultPath)
	assert.Contains(t, l, "HOME=/work")
	assert.Contains(t, l, "USER=sandbox")
	assert.Contains(t, l, "/work")
	// The command's own environment, not one its shell added to.
	cfg := Config{Args: []string{testutil.Busybox(t), "env"}, Env: []string{"A=1", "B=2"}}
	assert.Equal(t, []string{"A=1", "B=2"}, lines(mustRun(t, cfg)))
}

func TestWorkDirAndTmpfsLimits(t *testing.T) {
	cfg := shell(t, `
		stat -c '%u %a' /work /tmp
		dd if=/dev/zero of=/tmp/big bs=1024 count=2048 2>/dev/null || echo tmp-full
		i=0; while touch /work/f$i 2>/dev/null; do i=$((i+1)); done; echo files $i`)
	cfg.TmpfsSize = 1 << 20
	cfg.TmpfsInodes = 100
	l := lines(mustRun(t, cfg))
	require.Len(t, l, 4)
	assert.Equal(t, "1000 755", l[0])
	// /tmp belongs to root inside, or to the init's id when, as for an
	// ordinary user's own ids, root is not mapped.
	tmpOwner := "0"
	if os.Geteuid() != 0 && !testConfig(cfg).SubordinateIDs {
		tmpOwner = "1000"
	}
	assert.Equal(t, tmpOwner+" 1777", l[1])
	assert.Equal(t, "tmp-full", l[2])
	n, _ := strconv.Atoi(strings.TrimPrefix(l[3], "files "))
	assert.InDelta(t, 100, n, 2, "inode limit")
}

func TestTimeNamespace(t *testing.T) {
	cfg := shell(t, `cut -d. -f1 /proc/uptime`)
	cfg.TimeNamespace = true
	up, err := strconv.Atoi(strings.TrimSpace(mustRun(t, cfg)))
	require.NoError(t, err)
	assert.Less(t, up, 10, "uptime inside a time namespace starts near zero")

	// What Exec starts is in the same namespace.
	sb := longLived(t, Config{TimeNamespace: true})
	out, _, err := execSh(t, sb, `cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time; readlink /proc/1/ns/time 2>/dev/null || echo unreadable`)
	require.NoError(t, err)
	l := lines(out)
	require.Len(t, l, 3)
	up, err = strconv.Atoi(l[0])
	require.NoError(t, err)
	assert.Less(t, up, 10, "uptime of an Exec'd process in a time namespace")
	if l[2] != "unreadable" {
		assert.Equal(t, l[1], l[2], "pid 1 and the Exec'd process in one time namespace")
	}
}

func TestExtraFilesAndStdin(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cfg := shell(t, `cat; echo to-fd3 >&3; ls /proc/self/fd | sort -n | tr '\n' ' '`)
	cfg.Stdin = strings.NewReader("from stdin\n")
	cfg.ExtraFiles = []*os.File{w}
	out := mustRun(t, cfg)
	w.Close()
	buf := make([]byte, 100)
	n, _ := r.Read(buf)
	assert.Equal(t, "to-fd3\n", string(buf[:n]))
	l := lines(out)
	require.Len(t, l, 2)
	assert.Equal(t, "from stdin", l[0])
	// 0, 1, 2, the extra file, and the one ls opened to list them.
	fds := strings.Fields(l[1])
	assert.True(t, slices.Equal(fds, []string{"0", "1", "2", "3", "4"}), "open fds: %v", fds)
}

func TestPrivilegesDropped(t *testing.T) {
	for _, asRoot := range []bool{false, true} {
		t.Run(fmt.Sprintf("root=%v", asRoot), func(t *testing.T) {
			cfg := shell(t, `grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; unshare -U true 2>/dev/null && echo "unshare worked"; true`)
			cfg.RunAsRoot = asRoot
			out := mustRun(t, cfg)
			for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
				assert.Contains(t, out, set+":\t0000000000000000", "%s must be empty", set)
			}
			assert.Contains(t, out, "NoNewPrivs:\t1")
			assert.Contains(t, out, "Seccomp:\t2", "the seccomp filter must be on")
			assert.NotContains(t, out, "unshare worked")
		})
	}
}
