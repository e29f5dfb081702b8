//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// Attacks of a tenant on host root's per-user limits and on the other
// tenants' ids: the kernel counts what a sandbox holds against the owner
// of its user namespace in the host's, and a per-user rlimit against a
// host id that tenants would share.

// holding starts cfg, an attack that ends by holding what it took (see
// hold in the attack program), waits until it holds, and returns its
// steps, the sandbox, and a function that lets it end and waits for it
// (also called at the end of the test).
func holding(t *testing.T, cfg Config) (steps, *Sandbox, func()) {
	t.Helper()
	inR, inW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	cfg = testConfig(cfg)
	cfg.Stdin, cfg.Stdout = inR, outW
	sb := New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	err = sb.Start(ctx)
	inR.Close()
	outW.Close()
	release := sync.OnceFunc(func() {
		inW.Close()
		if err == nil {
			sb.Wait()
		}
		outR.Close()
		cancel()
	})
	t.Cleanup(release)
	require.NoError(t, err)
	var out strings.Builder
	// The sandbox's end, or the deadline, ends the output too.
	sc := bufio.NewScanner(outR)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if sc.Text() == "step hold ok" {
			break
		}
	}
	t.Logf("attack %q:\n%s", cfg.Args, out.String())
	st := parseSteps(out.String())
	require.Contains(t, st, "hold", "the attack ended before it held what it took")
	return st, sb, release
}

// count returns the number a step printed as its detail.
func (s steps) count(t *testing.T, name string) int {
	t.Helper()
	n, err := strconv.Atoi(s[name][1])
	require.NoError(t, err, "step %s: %q", name, s[name])
	return n
}

// rootInotify takes an inotify instance as the caller, and gives it back.
func rootInotify() error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// rootTimer creates a POSIX timer as the caller, which takes a queued
// signal of its RLIMIT_SIGPENDING, and deletes it.
func rootTimer() error {
	var ev [64]byte
	*(*int32)(unsafe.Pointer(&ev[12])) = 1 // SIGEV_NONE
	var id int32
	if _, _, e := unix.Syscall(unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, uintptr(unsafe.Pointer(&ev[0])), uintptr(unsafe.Pointer(&id))); e != 0 {
		return e
	}
	unix.Syscall(unix.SYS_TIMER_DELETE, uintptr(id), 0, 0)
	return nil
}

// rootSigqueue queues a real-time signal to the calling thread, which
// blocks it meanwhile, and takes it back.
func rootSigqueue() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const sig = 40
	set, old := uint64(1)<<(sig-1), uint64(0)
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&set)), uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		return e
	}
	defer unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	var info [128]byte
	*(*int32)(unsafe.Pointer(&info[0])) = sig
	*(*int32)(unsafe.Pointer(&info[8])) = -1 // SI_QUEUE
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_TGSIGQUEUEINFO, uintptr(unix.Getpid()), uintptr(unix.Gettid()), sig, uintptr(unsafe.Pointer(&info[0])), 0, 0); e != 0 {
		return e
	}
	var ts unix.Timespec
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&set)), 0, uintptr(unsafe.Pointer(&ts)), 8, 0, 0); e != 0 && e != unix.EAGAIN {
		return fmt.Errorf("take the signal back: %w", e)
	}
	return nil
}

// TestAttackRootInotify: a sandbox takes inotify instances until the
// kernel refuses one, and holds them. Host root can still take one: the
// sandbox's are counted against an owner id of its own, not against host
// root's 128. With the default limits the sandbox is refused at
// DefaultInotifyInstances; with InotifyInstances set, there; with
// Unlimited, where the host's per-user limit stops its owner id.
func TestAttackRootInotify(t *testing.T) {
	testutil.RequireRoot(t)
	require.NoError(t, rootInotify(), "host root cannot take an inotify instance before the attack")
	host := snapshotHost(t)
	for _, c := range []struct {
		name string
		set  int64
		want int
	}{{"default", 0, DefaultInotifyInstances}, {"set", 16, 16}, {"unlimited", Unlimited, -1}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := attack(t, "inotify")
			cfg.Limits.Kernel.InotifyInstances = c.set
			st, _, release := holding(t, cfg)
			defer release()
			assert.Equal(t, "EMFILE", st["inotify"][0], "the sandbox's inotify instances are not limited")
			if c.want >= 0 {
				assert.Equal(t, c.want, st.count(t, "inotify"))
			}
			assert.NoError(t, rootInotify(), "the sandbox took host root's inotify instances")
		})
	}
	host.check(t)
}

// TestAttackRootSignals: a sandbox queues real-time signals until the
// kernel refuses one, and holds them. Host root can still queue one and
// create a timer: the sandbox's are counted against an owner id of its
// own, not against host root's RLIMIT_SIGPENDING. The sandbox is refused
// at DefaultSignalsPending, or at SignalsPending; with Unlimited, where
// its namespace's bound stops it (host root's RLIMIT_SIGPENDING when the
// namespace was made).
func TestAttackRootSignals(t *testing.T) {
	testutil.RequireRoot(t)
	require.NoError(t, rootSigqueue(), "host root cannot queue a signal before the attack")
	require.NoError(t, rootTimer(), "host root cannot create a timer before the attack")
	host := snapshotHost(t)
	for _, c := range []struct {
		name string
		set  int64
		want int
	}{{"default", 0, int(min(DefaultSignalsPending, callerSigPending()))}, {"set", 100, 100}, {"unlimited", Unlimited, -1}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := attack(t, "sigpending")
			cfg.Limits.Kernel.SignalsPending = c.set
			st, _, release := holding(t, cfg)
			defer release()
			assert.Equal(t, "EAGAIN", st["sigqueue"][0], "the sandbox's queued signals are not limited")
			if c.want >= 0 {
				// A few signals of the same user may be pending besides:
				// the Go runtime's preemption signals, the init's SIGCHLD.
				n := st.count(t, "sigqueue")
				assert.True(t, n <= c.want && n >= c.want-4, "%d signals queued, not %d", n, c.want)
			}
			assert.NoError(t, rootSigqueue(), "the sandbox took host root's queued signals")
			assert.NoError(t, rootTimer(), "the sandbox took host root's queued signals")
		})
	}
	host.check(t)
}

// TestAttackTenantsShareNoIDs: two sandboxes of host root's run at once.
// Their pid 1 (and their commands) run as host ids that the other's never
// have, leased from root's range; and each fills RLIMIT_NPROC with
// processes of its own without taking the other's.
func TestAttackTenantsShareNoIDs(t *testing.T) {
	testutil.RequireRoot(t)
	bb := testutil.Busybox(t)
	host := snapshotHost(t)
	const procs = 32
	var uids [2][]uint32
	var forks [2]int
	var releases []func()
	for i := range 2 {
		cfg := attack(t, "nproc", bb)
		cfg.RunAsRoot = false
		cfg.Limits.Rlimits.Processes = procs
		st, sb, release := holding(t, cfg)
		releases = append(releases, release)
		assert.Equal(t, "EAGAIN", st["fork"][0])
		forks[i] = st.count(t, "fork")
		pid1 := sandboxPid1(sb)
		uids[i] = append(statusIDs(t, pid1, "Uid"), statusIDs(t, pid1, "Gid")...)
		for _, id := range uids[i] {
			assert.NotZero(t, slotOffset(t, rootIDMap().HostUID, id)+1, "pid 1's id %d", id)
		}
	}
	t.Logf("pid 1's host uids and gids: %v and %v; processes started: %d and %d", uids[0], uids[1], forks[0], forks[1])
	for _, a := range slices.Compact(slices.Sorted(slices.Values(uids[0]))) {
		assert.NotContains(t, uids[1], a, "two sandboxes share host id %d", a)
	}
	// Each started nearly procs, less the attack program's own threads,
	// whose number the Go runtime varies by one or two: the second
	// sandbox, started while the first holds its processes, is not
	// refused earlier.
	assert.Greater(t, forks[0], procs/2)
	assert.InDelta(t, forks[0], forks[1], 3, "the sandboxes' RLIMIT_NPROC counts are shared")
	for _, release := range releases {
		release()
	}
	host.check(t)
}

// sandboxPid1 returns the host pid of the sandbox's pid 1.
func sandboxPid1(sb *Sandbox) int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.raw != nil {
		return sb.raw.pid
	}
	return sb.cmd.Process.Pid
}

// statusIDs returns the ids of field ("Uid" or "Gid") of /proc/PID/status.
func statusIDs(t *testing.T, pid int, field string) []uint32 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(l, field+":")
		if !ok {
			continue
		}
		var ids []uint32
		for _, f := range strings.Fields(v) {
			n, err := strconv.ParseUint(f, 10, 32)
			require.NoError(t, err)
			ids = append(ids, uint32(n))
		}
		return ids
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return nil
}

// slotOffset returns where the host id lies in its slot of root's range
// starting at start, and fails the test if it lies outside the range.
func slotOffset(t *testing.T, start, id uint32) uint32 {
	t.Helper()
	pool := rootIDMap()
	size := slotSize(pool)
	if !assert.True(t, id >= start && uint64(id) < uint64(start)+uint64(pool.Size), "host id %d is not in root's range of %d from %d", id, pool.Size, start) {
		return 0
	}
	return (id - start) % size
}

// TestIDLeases: slots of a range are leased one per sandbox, the last
// one's lease fails with a *SetupError that says why, a released slot is
// leased again, and a slot held by a process that dies by SIGKILL is free
// at once.
func TestIDLeases(t *testing.T) {
	testutil.RequireRoot(t)
	path := t.TempDir() + "/ids.lock"
	defer func(p string) { idLeasePath = p }(idLeasePath)
	idLeasePath = path
	pool := IDMap{HostUID: 200000, HostGID: 300000, Size: 3 * DefaultIDMapSize}
	var leases []*idLease
	for range 3 {
		l, err := leaseIDs(pool)
		require.NoError(t, err)
		leases = append(leases, l)
		assert.Equal(t, uint32(DefaultIDMapSize-1), l.m.Size)
		assert.Equal(t, l.m.HostUID+l.m.Size, l.owner, "the owner is the slot's last id")
		assert.Equal(t, l.m.HostUID-pool.HostUID, l.m.HostGID-pool.HostGID)
	}
	assert.NotEqual(t, leases[0].m.HostUID, leases[1].m.HostUID)
	assert.NotEqual(t, leases[1].m.HostUID, leases[2].m.HostUID)
	assert.NotEqual(t, leases[0].m.HostUID, leases[2].m.HostUID)
	_, err := leaseIDs(pool)
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "id-range", se.Stage)
	assert.Contains(t, err.Error(), "held by running sandboxes")
	free := leases[1].m
	leases[1].release()
	l, err := leaseIDs(pool)
	require.NoError(t, err)
	assert.Equal(t, free, l.m)
	leases[1] = l

	// Another process holds the last slot, and dies.
	leases[2].release()
	cmd := testutil.HelperCommand("id-lease")
	cmd.Env = append(cmd.Env, "STOCKADE_TEST_LEASE="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	require.Greater(t, cmd.Process.Pid, 0)
	// The helper holds the slot for an hour: it is killed however the
	// test ends, and at testDeadline if it never says that it holds, which
	// ends the read.
	stop := sync.OnceFunc(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	t.Cleanup(stop)
	timer := time.AfterFunc(testDeadline, func() { cmd.Process.Kill() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	timer.Stop()
	require.Equal(t, "holding\n", line)
	_, err = leaseIDs(pool)
	assert.ErrorAs(t, err, &se, "a slot held by another process was leased")
	stop()
	l, err = leaseIDs(pool)
	require.NoError(t, err, "the slot of a dead process is not free")
	leases[2] = l
	for _, l := range leases {
		l.release()
	}
}

// idLeaseHelper is the process of TestIDLeases that holds a slot until it
// is killed, when testutil.HelperEnv says "id-lease".
func idLeaseHelper() bool {
	if os.Getenv(testutil.HelperEnv) != "id-lease" {
		return false
	}
	idLeasePath = os.Getenv("STOCKADE_TEST_LEASE")
	l, err := leaseIDs(IDMap{HostUID: 200000, HostGID: 300000, Size: 3 * DefaultIDMapSize})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	defer runtime.KeepAlive(l)
	fmt.Println("holding")
	time.Sleep(time.Hour)
	return true
}

// TestKernelLimitsInside: the sandbox's /proc/sys/user files and its
// RLIMIT_SIGPENDING hold what Limits.Kernel says, or the defaults, for
// host root and an ordinary user alike; and the command cannot raise
// them.
func TestKernelLimitsInside(t *testing.T) {
	script := `cd /proc/sys/user && echo $(cat max_inotify_instances max_inotify_watches max_user_namespaces max_mnt_namespaces)
grep 'Max pending signals' /proc/self/limits
echo 100000 > max_inotify_instances || echo refused`
	for _, c := range []struct {
		name string
		k    KernelLimits
		want []string
	}{
		{"default", KernelLimits{}, []string{
			fmt.Sprintf("%d %d %d %d", effective("max_inotify_instances", DefaultInotifyInstances),
				effective("max_inotify_watches", DefaultInotifyWatches), math.MaxInt32, math.MaxInt32),
			fmt.Sprint(min(DefaultSignalsPending, callerSigPending())),
		}},
		{"set", KernelLimits{InotifyInstances: 7, InotifyWatches: 99, Namespaces: 3, SignalsPending: 55}, []string{"7 99 3 3", "55"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := shell(t, script)
			cfg.Limits.Kernel = c.k
			o := run(t, cfg)
			require.NoError(t, o.err, o.stderr)
			l := lines(o.stdout)
			require.Len(t, l, 3, o.stdout)
			assert.Equal(t, c.want[0], l[0])
			assert.Equal(t, []string{"Max", "pending", "signals", c.want[1], c.want[1], "signals"}, strings.Fields(l[1]))
			assert.Equal(t, "refused", l[2])
		})
	}
}

// effective is what the sandbox's /proc/sys/user/NAME reads for a limit
// of v: v, unless the host's own is not above it, and then the kernel's
// default for a new namespace.
func effective(name string, v int64) int64 {
	if host, ok := hostUserLimit(name); ok && v >= host {
		return math.MaxInt32
	}
	return v
}
