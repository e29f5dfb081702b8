//go:build linux

package netns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// helperEnv switches the test binary into a helper process; its value is
// the helper's mode.
const helperEnv = testutil.HelperEnv

// etcEnv names a directory whose hosts and resolv.conf the helper
// bind-mounts on those of /etc first.
const etcEnv = "STOCKADE_NETNS_ETC"

func TestMain(m *testing.M) {
	testutil.Run(m, testutil.Options{
		Helper: func(mode string) int { return runHelper(mode, os.Args[len(os.Args)-helperArgs(os.Args):]) },
		Setup: func() error {
			// The runtime opens its network poller (an epoll and an
			// eventfd) on first use and keeps it: open it before the leak
			// check's first look.
			if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
				l.Close()
			}
			return nil
		},
		Checks: slices.Concat(testutil.DefaultLeakChecks, testutil.NetworkLeakChecks),
	})
}

// helperArgs counts the helper's arguments: everything after "--".
func helperArgs(args []string) int {
	i := slices.Index(args, "--")
	if i < 0 {
		return 0
	}
	return len(args) - i - 1
}

// runHelper is the main of a helper process. Modes:
//
//	serve ADDR          listen on ADDR, print "ready HOST:PORT", echo lines
//	                    until stdin closes
//	dial ADDR [DEV]     connect to ADDR (bound to device DEV), send a line,
//	                    print "ok" and the echo or "error" and why
//	reconfigure         try to set lo down, print "ok" or "error" and why
//	sleep               wait until stdin closes
//	pause               wait until killed
//	owner MODE          own a sandbox on the host until killed (see runOwner)
func runHelper(mode string, args []string) int {
	if dir := os.Getenv(etcEnv); dir != "" {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			fmt.Println("error make / private:", err)
			return 1
		}
		for _, f := range []string{"hosts", "resolv.conf"} {
			if err := unix.Mount(dir+"/"+f, "/etc/"+f, "", unix.MS_BIND, ""); err != nil {
				fmt.Println("error bind", f, err)
				return 1
			}
		}
	}
	switch mode {
	case "serve":
		l, err := net.Listen("tcp", args[0])
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready", l.Addr())
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go echo(c)
			}
		}()
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "dial":
		d := net.Dialer{Timeout: time.Second}
		if len(args) > 1 {
			dev := args[1]
			d.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
				})
				return errors.Join(err, serr)
			}
		}
		c, err := d.Dial("tcp", args[0])
		if err != nil {
			fmt.Println("error", err)
			return 0
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(c, "ping")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fmt.Println("error", err)
			return 0
		}
		fmt.Println("ok", strings.TrimSpace(line))
		return 0
	case "reconfigure":
		lo, err := netlink.LinkByIndex(1)
		if err == nil {
			err = netlink.LinkSetDown(lo)
		}
		if err != nil {
			fmt.Println("error", err)
			return 0
		}
		fmt.Println("ok")
		return 0
	case "sleep":
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "pause":
		for {
			time.Sleep(time.Hour)
		}
	case "owner":
		return runOwner(args)
	}
	fmt.Println("error unknown helper mode", mode)
	return 2
}

func echo(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(c, "echo "+line); err != nil {
			return
		}
	}
}

// helper is a helper process started by a test.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// sandboxed makes a helper look like a sandbox: in a user namespace of its
// own (root inside, mapped to root outside) and a mount namespace, so it
// has no capability over the network namespace it runs in.
func sandboxed(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
}

// startHelper starts a sandboxed helper in ns (on the host when ns is nil)
// and stops it when the test ends.
func startHelper(t testing.TB, ns *NS, env []string, args ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args[1:]...)...)
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+args[0])...)
	cmd.Stderr = os.Stderr
	sandboxed(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if ns == nil {
		err = cmd.Start()
	} else {
		err = ns.Start(cmd)
	}
	if err != nil {
		t.Fatalf("start helper %v: %v", args, err)
	}
	h := &helper{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(h.lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			h.lines <- s.Text()
		}
	}()
	t.Cleanup(h.stop)
	return h
}

// line returns the helper's next line of output.
func (h *helper) line(t testing.TB) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatalf("helper %v ended without output", h.cmd.Args)
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("helper %v printed nothing in 10 s", h.cmd.Args)
	}
	return ""
}

func (h *helper) stop() {
	h.stdin.Close()
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.cmd.Process.Kill()
		<-done
	}
}

// serve starts an echo server in ns and returns the address it listens on.
func serve(t testing.TB, ns *NS, env []string, addr string) string {
	t.Helper()
	h := startHelper(t, ns, env, "serve", addr)
	l := h.line(t)
	got, ok := strings.CutPrefix(l, "ready ")
	if !ok {
		t.Fatalf("server in sandbox: %s", l)
	}
	return got
}

// dial runs a dialling helper in ns and returns its verdict: "ok echo
// ping" or "error ...".
func dial(t testing.TB, ns *NS, env []string, args ...string) string {
	t.Helper()
	h := startHelper(t, ns, env, append([]string{"dial"}, args...)...)
	return h.line(t)
}

// hostEcho serves echo on a listener until the test ends, and then closes
// the connections it accepted: a connection whose peer vanished with its
// link would otherwise keep its socket, and its namespace, for ever.
func hostEcho(t testing.TB, l net.Listener) {
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			go echo(c)
		}
	}()
}

// noLeaks checks, when the test ends, that the host has the same links,
// addresses, routes and named namespaces as when it began, and that the
// test process holds no more network namespaces. Call it first, so that it
// runs after the test's other cleanups.
func noLeaks(t *testing.T) {
	t.Helper()
	checks := append(slices.Clone(testutil.NetworkLeakChecks), testutil.LeakCheck{Name: "namespace fd", Snapshot: testutil.NetnsFDs})
	testutil.CheckAfter(t, 3*time.Second, checks...)
}

// requireNetAdmin skips unless the test may create namespaces and links.
func requireNetAdmin(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireUserNamespaces(t)
}

// newNS makes a namespace that is closed when the test ends.
func newNS(t testing.TB) *NS {
	t.Helper()
	ns, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// hostTestSubnet is the link subnet of the managers that tests make on the
// real host namespace, and ownerTestSubnet that of the owner helper: not
// the default one, which other packages' tests, running side by side, may
// use.
var (
	hostTestSubnet  = netip.MustParsePrefix("10.216.0.0/16")
	ownerTestSubnet = netip.MustParsePrefix("10.217.0.0/24")
)

// mustManager makes a manager that is closed when the test ends. On the
// real host namespace, it uses hostTestSubnet unless told otherwise.
func mustManager(t testing.TB, cfg ManagerConfig) *Manager {
	t.Helper()
	if cfg.Host == nil && !cfg.LinkSubnet.IsValid() {
		cfg.LinkSubnet = hostTestSubnet
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}
