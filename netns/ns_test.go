//go:build linux

package netns

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// threadsInOwnNS fails the test if any thread of the process is in another
// network namespace than the process's first thread.
func threadsInOwnNS(t *testing.T) {
	t.Helper()
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		got, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil {
			continue // The thread ended.
		}
		if got != want {
			t.Errorf("thread %s is in %s, not in the process's %s", task.Name(), got, want)
		}
	}
}

func TestNewHasOnlyLoopbackUp(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	ns := newNS(t)
	h, err := ns.handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("links in a new namespace: %v, want lo alone", links)
	}
	if links[0].Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is down")
	}
	err = ns.Do(func() error {
		for _, s := range nsSysctls {
			b, err := os.ReadFile(s.path)
			if err != nil {
				return err
			}
			if got := strings.Join(strings.Fields(string(b)), " "); got != s.value {
				t.Errorf("%s = %q, want %q", s.path, got, s.value)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	threadsInOwnNS(t)
}

func TestCallerThreadsNeverMove(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			for range 8 {
				ns, err := New()
				if err != nil {
					errs <- err
					return
				}
				if err := ns.Do(func() error { return nil }); err != nil {
					errs <- err
				}
				ns.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	threadsInOwnNS(t)
}

func TestDoRunsInsideAndRaisesPanics(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	ns := newNS(t)
	var inside string
	if err := ns.Do(func() error {
		var err error
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(ns.Fd(), &st); err != nil {
		t.Fatal(err)
	}
	if want := "net:[" + strconv.FormatUint(st.Ino, 10) + "]"; inside != want {
		t.Errorf("Do ran in %s, want %s", inside, want)
	}

	want := errors.New("from fn")
	if err := ns.Do(func() error { return want }); err != want {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the panic of fn", v)
			}
		}()
		ns.Do(func() error { panic("boom") })
	}()
	threadsInOwnNS(t)

	ns.Close()
	if err := ns.Do(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}
	if ns.Fd() != -1 {
		t.Errorf("Fd after Close = %d, want -1", ns.Fd())
	}
}

func TestStartRefusesNewNetworkNamespace(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	ns := newNS(t)
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	if err := ns.Start(cmd); err == nil {
		cmd.Wait()
		t.Fatal("Start with CLONE_NEWNET succeeded")
	}
}

// A sandbox in a namespace of its own reaches nothing of the host: not
// even a listener on the host's loopback, since its 127.0.0.1 is its own.
func TestNoneCannotReachHostLoopback(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostEcho(t, l)
	// The same helper on the host reaches the listener: the probe works.
	if got := dial(t, nil, nil, l.Addr().String()); got != "ok echo ping" {
		t.Fatalf("helper on the host: %s", got)
	}
	m := mustManager(t, ManagerConfig{})
	n, err := m.Setup(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Release()
	got := dial(t, n.NS(), nil, l.Addr().String())
	if !strings.Contains(got, "connection refused") {
		t.Errorf("sandbox dialling the host's %s: %s, want connection refused", l.Addr(), got)
	}
}

// A sandbox in a user namespace of its own holds no capability over the
// network namespace it was given.
func TestSandboxCannotReconfigure(t *testing.T) {
	requireNetAdmin(t)
	noLeaks(t)
	ns := newNS(t)
	h := startHelper(t, ns, nil, "reconfigure")
	if got := h.line(t); !strings.Contains(got, "operation not permitted") {
		t.Errorf("sandbox setting lo down: %s, want operation not permitted", got)
	}
	hd, err := ns.handle()
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	lo, err := hd.LinkByIndex(1)
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is down")
	}
}
