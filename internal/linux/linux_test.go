//go:build linux

package linux

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// onOwnThread runs f on a locked thread that is thrown away afterwards, so
// that the per-thread state f changes (capabilities, no_new_privs, network
// namespace) never reaches the rest of the test process.
func onOwnThread(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f()
	}()
	<-done
}

func TestCapNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		cap  int
	}{
		{"CAP_CHOWN", unix.CAP_CHOWN},
		{"CAP_NET_BIND_SERVICE", unix.CAP_NET_BIND_SERVICE},
		{"CAP_SYS_ADMIN", unix.CAP_SYS_ADMIN},
		{"CAP_CHECKPOINT_RESTORE", unix.CAP_CHECKPOINT_RESTORE},
	} {
		c, ok := CapByName(tc.name)
		assert.True(t, ok, tc.name)
		assert.Equal(t, tc.cap, c, tc.name)
		assert.Equal(t, tc.name, CapName(tc.cap))
	}
	// Every known number has a name that maps back to it.
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		n := CapName(c)
		require.True(t, strings.HasPrefix(n, "CAP_"), "capability %d has no name", c)
		back, ok := CapByName(n)
		assert.True(t, ok)
		assert.Equal(t, c, back, n)
	}
	for _, bad := range []string{"", "cap_chown", "CHOWN", "CAP_NOPE", " CAP_CHOWN"} {
		_, ok := CapByName(bad)
		assert.False(t, ok, "%q is no capability", bad)
	}
	assert.Empty(t, CapName(-1))
	assert.Empty(t, CapName(unix.CAP_LAST_CAP+1))
	assert.Empty(t, CapName(1<<20))
}

func TestKernelAtLeast(t *testing.T) {
	var uts unix.Utsname
	require.NoError(t, unix.Uname(&uts))
	var major, minor int
	_, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &major, &minor)
	require.NoError(t, err)
	assert.True(t, KernelAtLeast(major, minor), "the running release itself")
	assert.True(t, KernelAtLeast(major, 0))
	assert.True(t, KernelAtLeast(major-1, 99))
	assert.True(t, KernelAtLeast(0, 0))
	assert.False(t, KernelAtLeast(major, minor+1))
	assert.False(t, KernelAtLeast(major+1, 0))
}

func TestLastCap(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	require.NoError(t, err)
	want, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	assert.Equal(t, want, LastCap(), "the probe agrees with /proc")
}

// capState reads the calling thread's bounding set, as a mask, and its
// inheritable and ambient sets.
func capState(t *testing.T) (bounding, inheritable, ambient uint64) {
	for c := 0; c <= LastCap(); c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		require.NoError(t, err)
		if in == 1 {
			bounding |= 1 << c
		}
		amb, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0)
		require.NoError(t, err)
		if amb == 1 {
			ambient |= 1 << c
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	require.NoError(t, unix.Capget(&hdr, &data[0]))
	inheritable = uint64(data[0].Inheritable) | uint64(data[1].Inheritable)<<32
	return bounding, inheritable, ambient
}

func TestDropBoundingSetAndInheritable(t *testing.T) {
	testutil.RequireRoot(t)
	keep := []int{unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT, 33 /* above 31: the second word */}
	var mask uint64
	for _, c := range keep {
		mask |= 1 << c
	}
	onOwnThread(func() {
		// An ambient capability of the thread, which SetInheritable clears.
		require.NoError(t, SetInheritable([]int{unix.CAP_KILL}))
		require.NoError(t, unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_KILL, 0, 0))
		_, _, ambient := capState(t)
		require.Equal(t, uint64(1)<<unix.CAP_KILL, ambient)

		require.NoError(t, DropBoundingSet(keep))
		require.NoError(t, SetInheritable(keep))
		bounding, inheritable, ambient := capState(t)
		assert.Equal(t, mask, bounding, "only the kept capabilities stay in the bounding set")
		assert.Equal(t, mask, inheritable)
		assert.Zero(t, ambient, "the ambient set is cleared")

		// Dropping again is fine; nothing comes back.
		require.NoError(t, DropBoundingSet(nil))
		bounding, _, _ = capState(t)
		assert.Zero(t, bounding)
	})
	// The rest of the process is untouched.
	bounding, _, _ := capState(t)
	assert.NotZero(t, bounding&(1<<unix.CAP_SYS_ADMIN), "the test's own threads keep their bounding set")
}

func TestDropBoundingSetNeedsSetpcap(t *testing.T) {
	testutil.RequireRoot(t)
	onOwnThread(func() {
		// CAP_SETPCAP out of the thread's effective set.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		require.NoError(t, unix.Capget(&hdr, &data[0]))
		data[0].Effective &^= 1 << unix.CAP_SETPCAP
		require.NoError(t, unix.Capset(&hdr, &data[0]))
		err := DropBoundingSet(nil)
		assert.ErrorIs(t, err, unix.EPERM)
		assert.ErrorContains(t, err, "drop capability")
	})
}

func TestSetNoNewPrivs(t *testing.T) {
	onOwnThread(func() {
		v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		require.NoError(t, err)
		require.Zero(t, v, "a fresh thread of the test has no no_new_privs")
		require.NoError(t, SetNoNewPrivs())
		v, err = unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	})
}

func TestSetDumpable(t *testing.T) {
	before, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_DUMPABLE, uintptr(before), 0, 0, 0) })
	for _, want := range []bool{false, true, false} {
		require.NoError(t, SetDumpable(want))
		v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		require.NoError(t, err)
		assert.Equal(t, want, v == 1)
	}
}

func TestLoopbackUp(t *testing.T) {
	testutil.RequireRoot(t)
	onOwnThread(func() {
		require.NoError(t, unix.Unshare(unix.CLONE_NEWNET))
		flags := func() uint16 {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			defer unix.Close(fd)
			ifr, err := unix.NewIfreq("lo")
			require.NoError(t, err)
			require.NoError(t, unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr))
			return ifr.Uint16()
		}
		require.Zero(t, flags()&unix.IFF_UP, "lo of a new namespace is down")
		require.NoError(t, LoopbackUp())
		assert.NotZero(t, flags()&unix.IFF_UP)
		require.NoError(t, LoopbackUp(), "bringing it up again is fine")
	})
}

func TestTimeNamespaceOffsets(t *testing.T) {
	var mono, boot unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono))
	require.NoError(t, unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot))
	off, err := TimeNamespaceOffsets()
	require.NoError(t, err)
	var m, b, mn, bn int64
	n, err := fmt.Sscanf(off, "monotonic %d %d\nboottime %d %d\n", &m, &mn, &b, &bn)
	require.NoError(t, err, "offsets %q", off)
	require.Equal(t, 4, n)
	assert.Zero(t, mn, "whole seconds")
	assert.Zero(t, bn, "whole seconds")
	// The clock inside, the clock outside plus the offset, starts at one
	// second or a little after (the clock moved on between the reads).
	for _, c := range []struct {
		name       string
		now, inner int64
	}{{"monotonic", mono.Sec, mono.Sec + m}, {"boottime", boot.Sec, boot.Sec + b}} {
		assert.LessOrEqual(t, c.inner, int64(1), "%s starts near zero", c.name)
		assert.GreaterOrEqual(t, c.inner, int64(0), "%s stays positive", c.name)
	}
	assert.True(t, strings.HasSuffix(off, "\n"))
}

func TestNewTimeNamespaceOnlyOnTheMainThread(t *testing.T) {
	onOwnThread(func() {
		if unix.Gettid() == unix.Getpid() {
			t.Skip("the goroutine landed on the main thread") // never, once main is locked by the runtime's init
		}
		err := NewTimeNamespace()
		assert.ErrorContains(t, err, "main thread")
	})
}

func TestCloseOnExecFrom(t *testing.T) {
	// Two descriptors far above anything the test process has, without
	// close-on-exec; only the upper one is marked.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	low, err := unix.FcntlInt(r.Fd(), unix.F_DUPFD, 900)
	require.NoError(t, err)
	defer unix.Close(low)
	high, err := unix.FcntlInt(w.Fd(), unix.F_DUPFD, 950)
	require.NoError(t, err)
	defer unix.Close(high)
	cloexec := func(fd int) bool {
		f, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.NoError(t, err)
		return f&unix.FD_CLOEXEC != 0
	}
	require.False(t, cloexec(low))
	require.False(t, cloexec(high))
	require.NoError(t, CloseOnExecFrom(high))
	assert.False(t, cloexec(low), "below the bound: left alone")
	assert.True(t, cloexec(high))
}
