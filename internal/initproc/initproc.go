//go:build linux

// Package initproc is the init stage of a sandbox: the copy of the host
// binary that the parent starts in fresh namespaces. It receives a
// proto.Spec over the inherited socket, builds the sandbox from inside
// (cgroup namespace, time namespace, root file system, hostname, loopback,
// resource limits), drops every privilege on a locked thread, starts the
// command from that thread, and then stays as the sandbox's pid 1: it
// forwards signals, reaps orphans, and when the command ends it kills what
// is left, reports the exit status and the CPU time of everything it
// reaped, and exits, which tears the pid namespace down.
//
// The init is non-dumpable from before it builds anything, so that a
// process in the sandbox cannot ptrace it or open its /proc/1/exe, the host
// binary.
package initproc

import (
	"errors"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/mount"
)

// Arg0 is the argv[0] that marks a process as a sandbox init. The sandbox
// package checks it during package initialisation, before the program's
// main can run.
const Arg0 = "stockade-init"

// IsInit reports whether this process was started as a sandbox init.
func IsInit() bool { return len(os.Args) > 0 && os.Args[0] == Arg0 }

// Main runs the init stage. It never returns.
func Main() {
	entry := proto.Monotonic()
	runtime.LockOSThread()
	fd := proto.InitFD
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		// Started as an init but without the parent's socket: never fall
		// through to the program's main.
		os.Stderr.WriteString("stockade: init stage started without its control socket\n")
		os.Exit(125)
	}
	unix.CloseOnExec(fd)

	var spec proto.Spec
	if err := proto.Recv(fd, &spec); err != nil {
		os.Exit(125) // the parent is gone
	}
	s := &stage{spec: &spec, fd: fd, marks: []int64{entry, proto.Monotonic()}, ttyMaster: -1, ttyPeer: -1}
	if err := s.setup(); err != nil {
		s.fail(err)
	}
	a := newAgent(s)
	pid, err := a.startMain()
	if err != nil {
		s.fail(err)
	}
	s.mark()
	started := proto.Report{Kind: proto.Started, Pid: pid, Marks: s.marks, Landlocked: s.landlocked, Message: s.landlockNote}
	var files []int
	if s.ttyMaster >= 0 {
		// The command has the peer; the parent gets the master, and the
		// init keeps neither.
		files = []int{s.ttyMaster}
		unix.Close(s.ttyPeer)
	}
	if err := proto.SendFiles(fd, &started, files); err != nil {
		os.Exit(125)
	}
	if s.ttyMaster >= 0 {
		unix.Close(s.ttyMaster)
	}
	a.run() // never returns
}

type stage struct {
	spec  *proto.Spec
	fd    int
	marks []int64 // see proto.Mark
	// argv0 is the sandbox's command, looked up in the new root; empty for
	// a sandbox without one.
	argv0 string
	// landlocked says that the Spec's Landlock domain is in force; when it
	// is not, landlockNote says why (see harden.go).
	landlocked   bool
	landlockNote string
	// ttyMaster and ttyPeer are the ends of the command's terminal, for a
	// Spec with TTY, until it runs; -1 otherwise.
	ttyMaster, ttyPeer int
}

// stepError is a setup step that failed.
type stepError struct {
	stage, path string
	err         error
}

func (e *stepError) Error() string { return e.stage + " " + e.path + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func step(stage, path string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{stage, path, err}
}

// fail reports err to the parent and exits.
func (s *stage) fail(err error) {
	r := failure(err)
	proto.Send(s.fd, &r)
	os.Exit(125)
}

// failure is the Failed report of err: the stage and path of a failed
// step or mount, and the errno when err carries one.
func failure(err error) proto.Report {
	r := proto.Report{Kind: proto.Failed, Message: err.Error()}
	var se *stepError
	var me *mount.Error
	switch {
	case errors.As(err, &me):
		r.Stage, r.Path = me.Op, me.Path
	case errors.As(err, &se):
		r.Stage, r.Path = se.stage, se.path
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		r.Errno = int(errno)
	}
	return r
}

func (s *stage) mark() { s.marks = append(s.marks, proto.Monotonic()) }

// setup builds the sandbox, waits for the parent's go-ahead, and drops
// every privilege on the calling (locked) thread, from which every process
// of the sandbox is then forked.
func (s *stage) setup() error {
	spec := s.spec
	// The files of the sandbox's per-user limits, opened while the host's
	// /proc is in sight (its /proc/sys/user shows the opener's user
	// namespace's) and written once the sandbox is built, so that its own
	// setup does not count against them.
	limits := make([]*os.File, len(spec.Sysctls))
	defer func() {
		for _, f := range limits {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, sc := range spec.Sysctls {
		p := "/proc/sys/user/" + sc.Name
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return step("user-limits", p, err)
		}
		limits[i] = f
	}
	if spec.TimeNS {
		if err := linux.NewTimeNamespace(); err != nil {
			return step("time-namespace", "", err)
		}
	}
	// Nothing of the sandbox runs yet; become non-dumpable before anything
	// does. Not earlier: the /proc files of a non-dumpable process belong
	// to root, so with subordinate ids the parent's newuidmap (run while
	// the init waits for its spec) would refuse it, and with an ordinary
	// user's own ids, where root is not mapped, the init could not write
	// its time namespace's offsets.
	if err := linux.SetDumpable(false); err != nil {
		return step("dumpable", "", err)
	}
	if err := mount.Apply(&spec.Plan); err != nil {
		return err
	}
	defaultSignals(spec.DefaultSignals)
	if spec.TTY {
		if err := s.openTTY(); err != nil {
			return err
		}
	}
	s.mark()

	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return step("hostname", spec.Hostname, err)
	}
	if spec.Loopback {
		if err := linux.LoopbackUp(); err != nil {
			return step("loopback", "lo", err)
		}
	}
	for i, f := range limits {
		if f == nil {
			continue
		}
		if _, err := f.WriteString(spec.Sysctls[i].Value); err != nil {
			return step("user-limits", f.Name(), err)
		}
		f.Close()
		limits[i] = nil
	}
	for _, rl := range spec.Rlimits {
		// The init runs under the hard limits; the soft ones below them
		// go to each process it forks (see agent.fork), so that the
		// init's own needs do not bound them.
		if err := unix.Setrlimit(rl.Resource, &unix.Rlimit{Cur: rl.Max, Max: rl.Max}); err != nil {
			return step("rlimit", "", err)
		}
	}
	if spec.Path != "" {
		argv0, err := lookPath(spec.Path, spec.Env)
		if err != nil {
			return step("exec", spec.Path, err)
		}
		s.argv0 = argv0
	}
	if fi, err := os.Stat(spec.Dir); err != nil {
		return step("chdir", spec.Dir, err)
	} else if !fi.IsDir() {
		return step("chdir", spec.Dir, unix.ENOTDIR)
	}
	s.mark()

	// Wait until the parent has placed us in our cgroup and network, then
	// make that cgroup the root of the command's cgroup namespace.
	cpus, err := s.awaitGo()
	if err != nil {
		return err
	}
	s.mark()
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return step("cgroup-namespace", "", err)
	}
	if len(cpus) > 0 {
		// The command forked from this thread inherits its affinity.
		var set unix.CPUSet
		for _, c := range cpus {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return step("cpu-affinity", "", err)
		}
	}
	s.mark()
	if err := s.dropPrivileges(); err != nil {
		return err
	}
	s.mark()
	return nil
}

// defaultSignals makes sure that the processes the init forks start with
// the signals of set (bit n-1 for signal n), which the init inherited
// ignored from the owner, at their default action. A fork keeps what is
// ignored but resets what has a handler: so the init catches them, into
// a channel nobody reads. (The runtime leaves alone only signals 32 and
// 33, which the C library reserves.)
func defaultSignals(set uint64) {
	if set == 0 {
		return
	}
	var sigs []os.Signal
	for sig := 1; sig <= 64; sig++ {
		if set&(1<<(sig-1)) != 0 {
			sigs = append(sigs, syscall.Signal(sig))
		}
	}
	signal.Notify(make(chan os.Signal, 1), sigs...)
}

// awaitGo waits for the parent's go-ahead and returns the CPUs the command
// may use.
func (s *stage) awaitGo() ([]int, error) {
	var req proto.Request
	if err := proto.Recv(s.fd, &req); err != nil {
		os.Exit(125) // the parent is gone
	}
	if !req.Go {
		return nil, step("handshake", "", errors.New("expected the go-ahead"))
	}
	return req.CPUs, nil
}

// lookPath finds file in the PATH of env, inside the new root, as a shell
// would. A name with a slash is used as it is.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	pathEnv := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	err := error(unix.ENOENT)
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, file)
		fi, statErr := os.Stat(p)
		if statErr != nil || fi.IsDir() {
			continue
		}
		if unix.Access(p, unix.X_OK) == nil || fi.Mode()&0o111 != 0 {
			return p, nil
		}
		err = unix.EACCES
	}
	return "", err
}

// DefaultPath is the PATH used to find the command when its environment
// has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
