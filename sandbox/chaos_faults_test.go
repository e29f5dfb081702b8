//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/proto"
)

// The faults a round injects from outside the library, and what the
// rounds read of the host to find their sandboxes and what they left.

// initPid returns the pid of a started sandbox's init, or 0.
func initPid(sb *Sandbox) int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return pid1Locked(sb)
}

// procStart returns the start time of a process, to tell it from a later
// process with the same pid; "" when it is gone.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// procState returns the state letter of a process ("R", "S", "Z" …), or
// "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// children returns the children of pid, of every thread.
func children(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// cgroupDirs returns the directories of the cgroups that pid is in, by
// controller ("" for the v2 hierarchy), for the hierarchies mounted here.
func cgroupDirs(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls, path := parts[1], parts[2]
		for _, m := range mounts {
			var ok bool
			if ctrls == "" {
				ok = m.FSType == "cgroup2"
			} else {
				ok = m.FSType == "cgroup" && slices.Contains(strings.Split(m.VFSOptions, ","), strings.Split(ctrls, ",")[0])
			}
			if !ok || !strings.HasPrefix(path, m.Root) {
				continue
			}
			dir := filepath.Join(m.Mountpoint, strings.TrimPrefix(path, m.Root))
			for _, c := range strings.Split(ctrls, ",") {
				out[c] = dir
			}
		}
	}
	return out, nil
}

// sandboxGroup returns the directories of a started sandbox's own cgroup,
// those whose name is the sandbox's group's, by controller.
func sandboxGroup(sb *Sandbox) map[string]string {
	sb.mu.Lock()
	var name string
	if sb.lim != nil && sb.lim.group != nil {
		name = sb.lim.group.Name()
	}
	sb.mu.Unlock()
	pid := initPid(sb)
	if name == "" || pid == 0 {
		return nil
	}
	dirs, err := cgroupDirs(pid)
	if err != nil {
		return nil
	}
	own := map[string]string{}
	for c, d := range dirs {
		if filepath.Base(d) == name {
			own[c] = d
		}
	}
	return own
}

// freeze freezes a sandbox's cgroup from outside, through the v1 freezer
// or cgroup.freeze on v2, and registers the thaw.
func (r *chaosRound) freeze(sb *Sandbox) bool {
	dirs := sandboxGroup(sb)
	var state, frozen, thawed string
	if d, ok := dirs["freezer"]; ok {
		state, frozen, thawed = filepath.Join(d, "freezer.state"), "FROZEN", "THAWED"
	} else if d, ok := dirs[""]; ok {
		state, frozen, thawed = filepath.Join(d, "cgroup.freeze"), "1", "0"
	} else {
		r.logf("freeze: the sandbox has no freezer group (ended already?)")
		return false
	}
	if err := os.WriteFile(state, []byte(frozen), 0); err != nil {
		r.logf("freeze %s: %v", state, err)
		return false
	}
	r.logf("froze %s", state)
	r.onHeal(func() { os.WriteFile(state, []byte(thawed), 0) })
	return true
}

// removeGroup moves a sandbox's processes out of its cgroup, to the
// parent group, and removes the group's directories, as an administrator
// cleaning up by hand would.
func (r *chaosRound) removeGroup(sb *Sandbox) bool {
	dirs := sandboxGroup(sb)
	if len(dirs) == 0 {
		r.logf("remove-cgroup: the sandbox has no group (ended already?)")
		return false
	}
	seen := map[string]bool{}
	removed := 0
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		procs := filepath.Join(d, "cgroup.procs")
		for attempt := 0; attempt < 100; attempt++ {
			b, err := os.ReadFile(procs)
			if err != nil {
				break
			}
			pids := strings.Fields(string(b))
			for _, p := range pids {
				os.WriteFile(filepath.Join(filepath.Dir(d), "cgroup.procs"), []byte(p), 0)
			}
			if unix.Rmdir(d) == nil {
				removed++
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	r.logf("removed %d of the %d directories of the sandbox's cgroup", removed, len(seen))
	return removed > 0
}

// signalInit sends sig to a sandbox's init from outside, and registers a
// SIGCONT after a SIGSTOP.
func (r *chaosRound) signalInit(sb *Sandbox, sig syscall.Signal) {
	pid := initPid(sb)
	if pid == 0 {
		return
	}
	r.signalPid("init", pid, sig)
}

func (r *chaosRound) signalPid(what string, pid int, sig syscall.Signal) {
	err := unix.Kill(pid, sig)
	r.logf("%s %d: %v: %v", sigName(sig), pid, what, err)
	if sig == unix.SIGSTOP {
		start := procStart(pid)
		r.onHeal(func() {
			if procStart(pid) == start {
				unix.Kill(pid, unix.SIGCONT)
			}
		})
	}
}

// signalCommand sends sig to the processes the init started (the
// command, or the Exec'd processes) from outside, and returns how many it
// found.
func (r *chaosRound) signalCommand(sb *Sandbox, sig syscall.Signal) int {
	kids := commandPids(sb)
	for _, k := range kids {
		r.signalPid("command", k, sig)
	}
	return len(kids)
}

// commandPids returns the host pids of the processes the sandbox started
// for its command: the init's children, or on the raw path the command,
// which is pid 1 itself.
func commandPids(sb *Sandbox) []int {
	pid := initPid(sb)
	if pid == 0 {
		return nil
	}
	sb.mu.Lock()
	raw := sb.raw != nil
	sb.mu.Unlock()
	if !raw {
		return children(pid)
	}
	// On the raw path the command is pid 1's child, and what Exec starts
	// is the test's own child in pid 1's namespace.
	out := children(pid)
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return out
	}
	for _, c := range children(os.Getpid()) {
		if c == pid {
			continue
		}
		if n, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c)); err == nil && n == ns {
			out = append(out, c)
		}
	}
	return out
}

// marker is a pipe given to a sandbox as its first extra file, by which a
// round finds the sandbox's init among the test's children while Start
// runs: the init holds it as descriptor markerFD.
type marker struct {
	r, w  *os.File
	inode string
}

// markerFD is where the init holds the first of Config.ExtraFiles, after
// its socket.
const markerFD = proto.InitFD + 1

func newMarker() (*marker, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if pw.Fd() == markerFD {
		// Every child forked for another round holds our descriptors
		// until it execs: it must not hold the marker where an init
		// holds it. Move it.
		fd, err := unix.FcntlInt(pw.Fd(), unix.F_DUPFD_CLOEXEC, markerFD+1)
		pw.Close()
		if err != nil {
			pr.Close()
			return nil, err
		}
		pw = os.NewFile(uintptr(fd), "marker")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(pr.Fd()), &st); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	return &marker{r: pr, w: pw, inode: fmt.Sprintf("pipe:[%d]", st.Ino)}, nil
}

func (m *marker) Close() {
	m.r.Close()
	m.w.Close()
}

// find returns the pid of the test's child that holds the marker as
// markerFD, or 0. A child forked for another round's start holds the
// marker too, under another number, until it execs.
// On the raw start path the command gets the first extra file as
// descriptor 3, where no other child holds the marker either.
func (m *marker) find() int {
	for _, pid := range children(os.Getpid()) {
		for _, fd := range []int{markerFD, proto.InitFD} {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); l == m.inode {
				return pid
			}
		}
	}
	return 0
}

// gate is closed by the round's heal; faults that block wait on it.
type gate struct {
	once sync.Once
	c    chan struct{}
}

func (r *chaosRound) newGate() *gate {
	g := &gate{c: make(chan struct{})}
	r.onHeal(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.c) }) }

// stalledReader blocks until the round heals, then reports the end.
type stalledReader struct{ g *gate }

func (s stalledReader) Read([]byte) (int, error) {
	<-s.g.c
	return 0, io.EOF
}

// endlessReader never ends: a command that does not read it leaves the
// pipe full and the copier blocked.
type endlessReader struct{ g *gate }

func (e endlessReader) Read(p []byte) (int, error) {
	select {
	case <-e.g.c:
		return 0, io.EOF
	default:
	}
	clear(p)
	return len(p), nil
}

// blockedWriter blocks every Write until the round heals, then fails.
type blockedWriter struct{ g *gate }

func (b blockedWriter) Write([]byte) (int, error) {
	<-b.g.c
	return 0, errors.New("chaos: writer healed")
}

// chaosFailingWriter fails every Write.
type chaosFailingWriter struct{}

func (chaosFailingWriter) Write([]byte) (int, error) { return 0, errors.New("chaos: writer fails") }

// exclusiveWriter is a writer that must never be called from two
// goroutines at once, like a bytes.Buffer; instead of corrupting itself
// it counts the overlaps.
type exclusiveWriter struct {
	busy     atomic.Int32
	overlaps atomic.Int32
	n        atomic.Int64
}

func (w *exclusiveWriter) Write(p []byte) (int, error) {
	if !w.busy.CompareAndSwap(0, 1) {
		w.overlaps.Add(1)
		return len(p), nil
	}
	defer w.busy.Store(0)
	time.Sleep(50 * time.Microsecond) // widen the window a second writer hits
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// chaosFDs lists the test process's open descriptors.
func chaosFDs() ([]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []string
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		fds = append(fds, e.Name()+" -> "+target)
	}
	slices.Sort(fds)
	return fds, nil
}

// chaosChildren lists the test process's children, zombies included.
func chaosChildren() ([]string, error) {
	var out []string
	for _, pid := range children(os.Getpid()) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		out = append(out, fmt.Sprintf("%d %s (%s)", pid, strings.TrimSpace(string(comm)), procState(pid)))
	}
	return out, nil
}

// chaosProcessTree describes the test's child processes and theirs: pid,
// name, state and the kernel function each sleeps in, for the report of
// an operation that hangs.
func chaosProcessTree() string {
	var b strings.Builder
	var walk func(pid, depth int)
	walk = func(pid, depth int) {
		for _, k := range children(pid) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k))
			wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", k))
			fmt.Fprintf(&b, "%*s%d %s state %s wchan %s\n", 2*depth, "", k,
				strings.TrimSpace(string(comm)), procState(k), wchan)
			if depth < 4 {
				walk(k, depth+1)
			}
		}
	}
	walk(os.Getpid(), 0)
	return b.String()
}

// gone checks, once a sandbox has ended, that its init and its cgroup
// are gone from the host.
func (r *chaosRound) gone(what string, pid int, start string, dirs map[string]string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		if pid != 0 && start != "" && procStart(pid) == start {
			left = append(left, fmt.Sprintf("the init %d (state %s)", pid, procState(pid)))
		}
		for _, d := range dirs {
			if _, err := os.Stat(d); err == nil && !slices.Contains(left, d) {
				left = append(left, d)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.fail("%s ended but left behind: %s", what, strings.Join(left, ", "))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
