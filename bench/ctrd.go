package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// containerd is a private containerd for the ctr rows (see ctr.go): its
// own root, state directory and sockets in a scratch directory, and a
// containerd namespace named after this process, so that nothing of it
// meets a containerd the host runs. The way it is set up follows
// cmd/stockade's TestContainerd.
type containerd struct {
	dir  string // scratch: config, root, state, sockets, log
	sock string
	ns   string // the containerd namespace, also the top cgroup runc and stockade make
	cmd  *exec.Cmd
	log  *os.File
	// madeRun: /run/containerd did not exist before; containerd 1.6 keeps
	// its shims' sockets in /run/containerd/s whatever its configuration
	// says, and the directories go when they are empty again.
	madeRun bool
	// ids are the containers run, whose shims' sockets stop removes if
	// the shims could not.
	ids []string
	// subreaper: this process adopts what the shims leave (they leave
	// containerd's session and outlive it), so that stop can find them.
	subreaper bool
}

// startContainerd starts containerd in dir and waits until it answers.
// On error nothing of it is left.
func startContainerd(dir string) (c *containerd, err error) {
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("%s is not installed (Debian package containerd)", b)
		}
	}
	c = &containerd{dir: dir, sock: filepath.Join(dir, "sock"), ns: fmtNamespace(os.Getpid())}
	// The plugins it does not need: CRI, the snapshotters other than
	// overlayfs and native, and opt, which makes /opt/containerd.
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc", filepath.Join(dir, "debug.sock"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		return nil, err
	}
	if c.log, err = os.Create(filepath.Join(dir, "containerd.log")); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/run/containerd"); errors.Is(err, os.ErrNotExist) {
		c.madeRun = true
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		c.log.Close()
		return nil, fmt.Errorf("become a subreaper: %w", err)
	}
	c.subreaper = true
	defer func() {
		if err != nil {
			c.stop()
			c = nil
		}
	}()
	c.cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		c.cmd = nil
		return c, fmt.Errorf("start containerd: %w", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.ctr(ctx, "version").Run()
		cancel()
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("containerd did not answer within 30 s (ctr version: %v)%s", err, c.logTail())
		}
	}
}

// fmtNamespace is the containerd namespace of the harness with pid.
func fmtNamespace(pid int) string { return fmt.Sprintf("stockade-bench-%d", pid) }

// ctr returns a ctr command with args against this containerd, in its
// namespace.
func (c *containerd) ctr(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ctr", append([]string{"--address", c.sock, "--namespace", c.ns}, args...)...)
}

// run runs ctr with args and returns its output, or an error with it.
func (c *containerd) run(ctx context.Context, args ...string) (string, error) {
	out, err := c.ctr(ctx, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// version is containerd's version line.
func (c *containerd) version() string {
	out, err := exec.Command("containerd", "--version").Output()
	if err != nil {
		return "containerd"
	}
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return "containerd " + f[2]
	}
	return strings.TrimSpace(string(out))
}

// logTail is the end of containerd's log, for error messages.
func (c *containerd) logTail() string {
	b, _ := os.ReadFile(c.log.Name())
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	if len(b) == 0 {
		return ""
	}
	return "\ncontainerd's log ends:\n" + string(b)
}

// reap reaps the adopted children that have ended (the shims, mostly),
// without blocking, and leaves containerd's end to its Wait.
func (c *containerd) reap() {
	for _, pid := range children(os.Getpid()) {
		if pid <= 0 || (c.cmd != nil && c.cmd.Process != nil && pid == c.cmd.Process.Pid) {
			continue
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// stop ends everything the harness started and removes what it made:
// the containers left in its namespace (an interrupted run leaves one),
// containerd, the shims and monitors this process adopted, mounts under
// the scratch directory, the namespace's control groups, and
// /run/containerd if it made it. It returns what it could not undo; the
// scratch directory itself is its caller's to remove.
func (c *containerd) stop() error {
	var errs []error
	if c.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if out, err := c.run(ctx, "containers", "ls", "--quiet"); err == nil {
			for _, id := range strings.Fields(out) {
				c.ctr(ctx, "task", "kill", "--signal", "SIGKILL", id).Run()
				c.ctr(ctx, "task", "delete", "--force", id).Run()
				if _, err := c.run(ctx, "containers", "delete", id); err != nil {
					errs = append(errs, err)
				}
			}
		}
		cancel()
		c.cmd.Process.Signal(unix.SIGTERM)
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-done
			errs = append(errs, errors.New("containerd did not end within 10 s of SIGTERM: killed"))
		}
	}
	if c.subreaper {
		// Killed shims' containers come to this process: it stays the
		// subreaper until they are gone too.
		if err := reapAdopted(3 * time.Second); err != nil {
			errs = append(errs, err)
		}
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
	for _, id := range c.ids {
		if err := os.Remove(c.shimSocket(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := unmountUnder(c.dir); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroups(c.ns); err != nil {
		errs = append(errs, err)
	}
	if c.madeRun {
		os.Remove(filepath.Join(shimSocketRoot, "s"))
		os.Remove(shimSocketRoot)
	}
	if c.log != nil {
		c.log.Close()
	}
	return errors.Join(errs...)
}

// shimSocketRoot is where containerd 1.6 keeps its shims' sockets,
// whatever its configuration says.
const shimSocketRoot = "/run/containerd"

// shimSocket is the path of the socket of the shim of container id, as
// containerd 1.6 names it: a hash of containerd's address, the namespace
// and the id.
func (c *containerd) shimSocket(id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(c.sock, c.ns, id)))
	return filepath.Join(shimSocketRoot, "s", hex.EncodeToString(sum[:]))
}

// reapAdopted waits up to d for this process's children to end, and
// reaps them. It is called when every child the harness started itself
// has been waited for, so what is left was adopted: shims, and what they
// ran. Those still running then are killed (a shim whose task's creation
// was cut short by an interrupted ctr stays after its container's
// deletion), with what they leave to this process, and named in the
// error.
func reapAdopted(d time.Duration) error {
	self := os.Getpid()
	deadline := time.Now().Add(d)
	var killed []string
	for {
		left := children(self)
		for _, pid := range left {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
		if left = children(self); len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				if pid <= 0 || pid == self {
					continue
				}
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				killed = append(killed, fmt.Sprintf("%d (%s)", pid, strings.TrimSpace(string(comm))))
				unix.Kill(pid, unix.SIGKILL)
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, 0, nil)
			}
			// What the killed leave comes here next: a second round.
			deadline = time.Now().Add(time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(killed) > 0 {
		return fmt.Errorf("still running %s after containerd ended, killed: %s", d, strings.Join(killed, ", "))
	}
	return nil
}

// unmountUnder detaches every mount at or below dir, the deepest first:
// the root file systems of containers whose shim did not get to unmount
// them. A mount left there would send the directory's removal into the
// image's files.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes the control group ns at the top of every
// hierarchy and the groups under it: ctr's spec places a container at
// /NS/ID; runc removes ID at delete and leaves NS, and an interrupted run
// leaves ID too.
func removeCgroups(ns string) error {
	hierarchies, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range append(hierarchies, "/sys/fs/cgroup") {
		if _, err := os.Stat(filepath.Join(h, ns)); err == nil {
			errs = append(errs, removeCgroupTree(filepath.Join(h, ns)))
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes the control group top and those under it.
func removeCgroupTree(top string) error {
	// Children first: a group must be empty of groups to go.
	var dirs []string
	filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	var errs []error
	for _, d := range dirs {
		// A group whose last process was just killed is busy for a moment.
		err := unix.Rmdir(d)
		for deadline := time.Now().Add(time.Second); errors.Is(err, unix.EBUSY) && time.Now().Before(deadline); err = unix.Rmdir(d) {
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
