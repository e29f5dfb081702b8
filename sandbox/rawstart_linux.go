//go:build linux && (amd64 || arm64)

package sandbox

import (
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/reaper"
	"github.com/stockade/stockade/internal/sysplan"
	"github.com/stockade/stockade/mount"
)

// The raw start path (process model v2). The Spec that the init stage
// would receive is compiled instead into a sysplan program, run by a
// CLONE_VM child up to its execve: no Go runtime starts in any process of
// the sandbox, and the caller's memory is never copied. That child builds
// the sandbox, clones the command (pid 2, CLONE_VM as well, which waits
// for the next step before its exec) and becomes pid 1 by exec'ing the
// reaper (see internal/reaper). The owner supervises both from outside,
// through their pidfds. This file compiles a start; rawconfine_linux.go
// holds the confinement steps, rawlaunch_linux.go the owner's side.

// rawProgram is a Spec compiled for the raw start path.
type rawProgram struct {
	prog   *sysplan.Program
	mounts *mount.Compiled
	// command says whether the program starts a command; without one, the
	// sandbox is long-lived and runs what Exec starts.
	command bool
	// release and releaseW are the cells for the two ends of the pipe on
	// which the child waits until the parent has written its id maps.
	release, releaseW sysplan.Ref
	stdio             [3]sysplan.Ref
	extra             []sysplan.Ref
	// landlock holds the result of landlock_restrict_self: zero when the
	// domain is in force.
	landlock sysplan.Ref
	// marks are CLOCK_MONOTONIC timestamps the child takes between stages.
	marks  sysplan.Ref
	nmarks int
	// target and child, in a program of compileExec, are the cells for the
	// pidfd of the sandbox's pid 1 and for the pid of the process started.
	target, child sysplan.Ref
	// In a program of compileSpec: report and reaper are the cells for the
	// write end of the pipe the reaper reports on and for the reaper's
	// memfd; kept receives the number, in pid 1's table, of the pidfd of
	// the command that pid 1 keeps open for the owner to copy.
	report, reaper, kept sysplan.Ref
	// timeNS, in a program of compileExec for a sandbox with a time
	// namespace, is the cell for a descriptor of that namespace.
	timeNS sysplan.Ref
	// timens is a buffer for the offsets of a new time namespace, which
	// depend on the clocks at each start, and timensLen their length.
	timens, timensLen sysplan.Ref
	// gate is the word the command waits on until pid 1 has exec'd.
	gate sysplan.Ref
	// tasks are the cells for the tasks files of the sandbox's group on
	// cgroup v1, one per hierarchy: the child moves itself in first.
	tasks []sysplan.Ref
	// ttySock, for a command with a terminal, is the cell for the socket
	// on which the command sends the owner the master (see ttySteps), and
	// ttySize for the terminal's size.
	ttySock, ttySize sysplan.Ref
}

// compileSpec compiles spec for a start by a caller whose id maps are id.
// With parentClones the parent clones the root directory and the bind
// sources (host root); otherwise the child does.
func compileSpec(spec *proto.Spec, id identity, parentClones bool, ntasks int) (*rawProgram, error) {
	b, rp, mark := newRawBuilder()
	rp.release, rp.releaseW = b.Cell(), b.Cell()
	rp.report, rp.reaper, rp.kept = b.Cell(), b.Cell(), b.Cell()
	rp.command = spec.Path != ""
	imm := sysplan.Imm[int]
	mark()
	enterGroupSteps(b, rp, ntasks)
	// Wait for the id maps, the cgroup and the network. If the parent dies
	// first, the read ends without the byte it expects.
	b.Syscall(b.Stage("handshake", ""), unix.SYS_CLOSE, sysplan.Load(rp.releaseW))
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_PRCTL, imm(unix.PR_SET_PDEATHSIG), imm(int(unix.SIGKILL)))
	b.Syscall(b.Stage("handshake", ""), unix.SYS_READ, sysplan.Load(rp.release), sysplan.Ptr(b.Cell()), imm(1)).Expect(1)
	if spec.TimeNS {
		timeNamespaceSteps(b, rp)
	}
	// No PR_SET_DUMPABLE here: the flag belongs to the memory the child
	// shares with the owner, and nothing else runs in the child's fresh
	// pid namespace before the exec, which sets the reaper's own.
	limits := userLimitOpenSteps(b, spec.Sysctls)
	b.Syscall(b.Stage("setsid", ""), unix.SYS_SETSID)
	initIDSteps(b, id)
	mark()

	var err error
	if rp.mounts, err = mount.Compile(b, &spec.Plan, parentClones); err != nil {
		return nil, err
	}
	mark()
	host := b.String(spec.Hostname)
	b.Syscall(b.Stage("hostname", spec.Hostname), unix.SYS_SETHOSTNAME, sysplan.Ptr(host), imm(len(spec.Hostname)))
	if spec.Loopback {
		loopbackUp(b)
	}
	userLimitWriteSteps(b, spec.Sysctls, limits)
	// The cgroup namespace, rooted at the group the parent has placed the
	// child in, for the command and for every process Exec starts.
	b.Syscall(b.Stage("cgroup-namespace", ""), unix.SYS_UNSHARE, imm(unix.CLONE_NEWCGROUP))
	if rp.command {
		// The command, pid 2: the kernel writes its pidfd into the cell.
		// Not CLONE_VFORK: the command waits, before its confinement and
		// exec, until this child has exec'd the reaper, so that pid 1
		// never shares the owner's memory while the command runs. The
		// kernel clears the gate and wakes its waiter when this child's
		// memory goes, at the exec or at its death (set_tid_address).
		// Both run the interpreter on registers alone, so they may share
		// its stack.
		rp.gate = b.Cell()
		b.PutU64(rp.gate, 1)
		b.Syscall(b.Stage("clone", ""), unix.SYS_SET_TID_ADDRESS, sysplan.Ptr(rp.gate))
		cmdPidfd := b.Cell()
		pid1 := b.NewLabel()
		b.Syscall(b.Stage("clone", ""), unix.SYS_CLONE, imm(unix.CLONE_VM|unix.CLONE_PIDFD|int(unix.SIGCHLD)), imm(0), sysplan.Ptr(cmdPidfd)).
			ExpectElse(0, pid1)
		b.Syscall(b.Stage("setsid", ""), unix.SYS_SETSID)
		if err := commandSteps(b, spec, id, rp, mark, false); err != nil {
			return nil, err
		}
		b.Place(pid1)
		// Keep a copy of the pidfd, not close-on-exec, for the owner.
		b.Syscall(b.Stage("reaper", ""), unix.SYS_CLOSE_RANGE, imm(0), imm(-1), imm(unix.CLOSE_RANGE_CLOEXEC))
		b.Syscall(b.Stage("reaper", ""), unix.SYS_FCNTL, sysplan.Load(cmdPidfd), imm(unix.F_DUPFD), imm(4)).Save(rp.kept)
	} else {
		mark()
		mark()
		b.Syscall(b.Stage("reaper", ""), unix.SYS_CLOSE_RANGE, imm(0), imm(-1), imm(unix.CLOSE_RANGE_CLOEXEC))
	}
	if err := reaperSteps(b, rp); err != nil {
		return nil, err
	}
	if rp.prog, err = b.Build(); err != nil {
		return nil, err
	}
	return rp, nil
}

// timeNamespaceSteps give the children of the child (the command, and
// the reaper at its exec) a new time namespace whose clocks start near
// zero, as the init's NewTimeNamespace does: the offsets, which depend on
// the clocks at the start, are in rp.timens. The child still has the
// owner's ids, which own its /proc/self files.
func timeNamespaceSteps(b *sysplan.Builder, rp *rawProgram) {
	rp.timens, rp.timensLen = b.Alloc(64), b.Cell()
	st := b.Stage("time-namespace", "")
	b.Syscall(st, unix.SYS_UNSHARE, sysplan.Imm(unix.CLONE_NEWTIME))
	fd := b.Cell()
	b.Syscall(st, unix.SYS_OPENAT, sysplan.Imm(unix.AT_FDCWD), sysplan.Ptr(b.String("/proc/self/timens_offsets")), sysplan.Imm(unix.O_WRONLY|unix.O_CLOEXEC)).Save(fd)
	b.Syscall(st, unix.SYS_WRITE, sysplan.Load(fd), sysplan.Ptr(rp.timens), sysplan.Load(rp.timensLen))
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(fd))
}

// userLimitOpenSteps open the sandbox's /proc/sys/user files (see
// KernelLimits), for userLimitWriteSteps to write once the sandbox is
// built, so that its own setup (the mount namespaces that an ordinary
// user's bind clones make, say) does not count against them: the child,
// with every capability in the sandbox's user namespace, still sees the
// host's /proc here, whose /proc/sys/user shows the files of the opener's
// namespace. It returns the cells of the descriptors, -1 for a file this
// kernel lacks.
func userLimitOpenSteps(b *sysplan.Builder, sysctls []proto.Sysctl) []sysplan.Ref {
	imm := sysplan.Imm[int]
	var fds []sysplan.Ref
	for _, sc := range sysctls {
		path := "/proc/sys/user/" + sc.Name
		fd := b.Cell()
		b.PutU64(fd, ^uint64(0))
		next := b.NewLabel()
		b.Syscall(b.Stage("user-limits", path), unix.SYS_OPENAT, imm(unix.AT_FDCWD), sysplan.Ptr(b.String(path)), imm(unix.O_WRONLY|unix.O_CLOEXEC)).
			Save(fd).OnErr(uint64(unix.ENOENT), next)
		b.Place(next)
		fds = append(fds, fd)
	}
	return fds
}

// userLimitWriteSteps write the values into the files that
// userLimitOpenSteps opened, while the child still holds its
// capabilities, and close them.
func userLimitWriteSteps(b *sysplan.Builder, sysctls []proto.Sysctl, fds []sysplan.Ref) {
	imm := sysplan.Imm[int]
	for i, sc := range sysctls {
		st := b.Stage("user-limits", "/proc/sys/user/"+sc.Name)
		skip := b.NewLabel()
		// A file this kernel lacks: the write to -1 fails with EBADF.
		b.Syscall(st, unix.SYS_WRITE, sysplan.Load(fds[i]), sysplan.Ptr(b.String(sc.Value)), imm(len(sc.Value))).
			Expect(uint64(len(sc.Value))).OnErr(uint64(unix.EBADF), skip)
		b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(fds[i]))
		b.Place(skip)
	}
}

// enterGroupSteps move the child into the sandbox's group on cgroup v1,
// by writing 0 to each of the ntasks tasks files in rp.tasks.
func enterGroupSteps(b *sysplan.Builder, rp *rawProgram, ntasks int) {
	zero := b.String("0")
	for range ntasks {
		c := b.Cell()
		rp.tasks = append(rp.tasks, c)
		b.Syscall(b.Stage("cgroup", ""), unix.SYS_WRITE, sysplan.Load(c), sysplan.Ptr(zero), sysplan.Imm(1)).Expect(1)
	}
}

// reaperSteps make the child pid 1 of the sandbox for good: it execs the
// reaper, with descriptor 3 its end of the report pipe, after dropping
// every capability, setting no_new_privs and the reaper's seccomp filter.
// Every other descriptor is already close-on-exec, but for the command's
// pidfd.
func reaperSteps(b *sysplan.Builder, rp *rawProgram) error {
	imm := sysplan.Imm[int]
	parentDeathSteps(b, rp)
	st := b.Stage("reaper", "")
	b.Syscall(st, unix.SYS_DUP3, sysplan.Load(rp.report), imm(3), imm(0))
	for c := 0; c <= linux.LastCap(); c++ {
		b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAPBSET_DROP), imm(c))
	}
	hdr := b.Alloc(8 + 24)
	b.PutU32(hdr, unix.LINUX_CAPABILITY_VERSION_3)
	b.Syscall(st, unix.SYS_CAPSET, sysplan.Ptr(hdr), sysplan.Ptr(hdr.Field(8)))
	b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAP_AMBIENT), imm(unix.PR_CAP_AMBIENT_CLEAR_ALL), imm(0), imm(0), imm(0))
	b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_SET_NO_NEW_PRIVS), imm(1), imm(0), imm(0), imm(0))
	f, err := reaper.Filter(runtime.GOARCH)
	if err != nil {
		return err
	}
	seccompStep(b, b.Stage("reaper", "seccomp"), f)
	argv := []string{"stockade-reaper"}
	if rp.command {
		argv = append(argv, "2")
	}
	b.Syscall(b.Stage("reaper", "exec"), unix.SYS_EXECVEAT, sysplan.Load(rp.reaper), sysplan.Ptr(b.String("")),
		sysplan.Ptr(b.Strings(argv)), sysplan.Ptr(b.Strings(nil)), imm(unix.AT_EMPTY_PATH))
	return nil
}

// newRawBuilder returns a builder, the program it builds and a function
// that adds a step taking a timestamp.
func newRawBuilder() (*sysplan.Builder, *rawProgram, func()) {
	b := sysplan.NewBuilder()
	rp := &rawProgram{landlock: b.Cell(), release: sysplan.Nil, releaseW: sysplan.Nil,
		target: sysplan.Nil, child: sysplan.Nil, report: sysplan.Nil, reaper: sysplan.Nil, kept: sysplan.Nil,
		timens: sysplan.Nil, timensLen: sysplan.Nil, timeNS: sysplan.Nil, gate: sysplan.Nil, ttySock: sysplan.Nil, ttySize: sysplan.Nil}
	rp.marks = b.Alloc(16 * 8)
	mark := func() {
		b.Syscall(b.Stage("clock", ""), unix.SYS_CLOCK_GETTIME, sysplan.Imm(unix.CLOCK_MONOTONIC), sysplan.Ptr(rp.marks.Field(16*rp.nmarks)))
		rp.nmarks++
	}
	return b, rp, mark
}

// initIDSteps make the child root of the sandbox's user namespace (or the
// ids the init stage would run as), without supplementary groups of the
// host.
func initIDSteps(b *sysplan.Builder, id identity) {
	imm := sysplan.Imm[int]
	if id.setGroups {
		b.Syscall(b.Stage("setgroups", ""), unix.SYS_SETGROUPS, imm(0), imm(0))
	}
	b.Syscall(b.Stage("setresgid", ""), unix.SYS_SETRESGID, imm(id.initGID), imm(id.initGID), imm(id.initGID))
	b.Syscall(b.Stage("setresuid", ""), unix.SYS_SETRESUID, imm(id.initUID), imm(id.initUID), imm(id.initUID))
}

// commandSteps start the command of spec in a sandbox that is built:
// resource limits, the cgroup namespace (for the sandbox's own command),
// the working directory, the descriptors, the confinement and the exec.
func commandSteps(b *sysplan.Builder, spec *proto.Spec, id identity, rp *rawProgram, mark func(), own bool) error {
	imm := sysplan.Imm[int]
	for _, rl := range spec.Rlimits {
		r := b.Alloc(16)
		b.PutU64(r, rl.Cur)
		b.PutU64(r.Field(8), rl.Max)
		b.Syscall(b.Stage("rlimit", ""), unix.SYS_PRLIMIT64, imm(0), imm(rl.Resource), sysplan.Ptr(r), imm(0))
	}
	if own {
		b.Syscall(b.Stage("cgroup-namespace", ""), unix.SYS_UNSHARE, imm(unix.CLONE_NEWCGROUP))
	}
	defaultSignalSteps(b, spec.DefaultSignals)
	// The working directory, entered by handle inside the root.
	how := b.Alloc(24)
	b.PutU64(how, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	b.PutU64(how.Field(16), unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	dirfd := b.Cell()
	b.Syscall(b.Stage("chdir", spec.Dir), unix.SYS_OPENAT2, imm(unix.AT_FDCWD), sysplan.Ptr(b.String(spec.Dir)), sysplan.Ptr(how), imm(24)).Save(dirfd)
	b.Syscall(b.Stage("chdir", spec.Dir), unix.SYS_FCHDIR, sysplan.Load(dirfd))
	b.Syscall(b.Stage("chdir", spec.Dir), unix.SYS_CLOSE, sysplan.Load(dirfd))
	mark()

	// Descriptors: the caller makes sure every source is above the
	// numbers they go to.
	for i := range rp.stdio {
		rp.stdio[i] = b.Cell()
		if !spec.TTY {
			b.Syscall(b.Stage("stdio", ""), unix.SYS_DUP3, sysplan.Load(rp.stdio[i]), imm(i), imm(0))
		}
	}
	if spec.TTY {
		rp.ttySock = b.Cell()
		ttySteps(b, spec, id, rp)
	}
	for i := 0; i < spec.ExtraFiles; i++ {
		c := b.Cell()
		rp.extra = append(rp.extra, c)
		b.Syscall(b.Stage("extra-files", ""), unix.SYS_DUP3, sysplan.Load(c), imm(3+i), imm(0))
	}
	// Everything else closes at the exec (the failure pipe must stay open
	// until then: it is how the parent learns of the exec).
	b.Syscall(b.Stage("close-fds", ""), unix.SYS_CLOSE_RANGE, imm(3+spec.ExtraFiles), imm(-1), imm(unix.CLOSE_RANGE_CLOEXEC))

	mark()
	if !rp.gate.IsNil() {
		// Wait for pid 1's exec (see compileSpec): nothing the command
		// runs may find pid 1 still in the owner's memory.
		next := b.NewLabel()
		b.Syscall(b.Stage("reaper", "wait"), unix.SYS_FUTEX, sysplan.Ptr(rp.gate), imm(0 /* FUTEX_WAIT */), imm(1), imm(0)).
			OnErr(uint64(unix.EAGAIN), next)
		b.Place(next)
	}
	if err := confineSteps(b, spec, id, rp); err != nil {
		return err
	}
	execSteps(b, spec)
	return nil
}

// compileExec compiles the start of one more process in a running raw
// sandbox, as Exec asks: a CLONE_VM child of the owner joins the
// sandbox's namespaces through the pidfd of its pid 1, then clones the
// process itself (CLONE_PARENT makes the owner its parent, CLONE_VFORK
// keeps the memory to one user at a time), which is confined as the
// command was and execs; the child then exits. spec is the sandbox's,
// with the process's command, ids and descriptors.
func compileExec(spec *proto.Spec, id identity, ntasks int) (*rawProgram, error) {
	b, rp, mark := newRawBuilder()
	rp.target, rp.child = b.Cell(), b.Cell()
	rp.command = true
	imm := sysplan.Imm[int]
	mark()
	enterGroupSteps(b, rp, ntasks)
	b.Syscall(b.Stage("setns", ""), unix.SYS_SETNS, sysplan.Load(rp.target),
		imm(unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWPID|unix.CLONE_NEWUTS|unix.CLONE_NEWIPC|unix.CLONE_NEWNET|unix.CLONE_NEWCGROUP))
	parent := b.NewLabel()
	// CLONE_PARENT_SETTID: the kernel writes the pid into the cell before
	// the process runs, so that the owner, which must reap it, learns it
	// even if the child is killed while it waits for the exec. (No Save:
	// the process, which shares this memory, would store its 0 there.)
	//
	// A time namespace is joined by a process whose memory is its own:
	// the kernel remaps the clock pages of the joiner's memory, here the
	// owner's. For a sandbox with one, the process is a fork (copied, not
	// shared, memory: a cost that grows with the owner's), which joins it.
	flags := unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_PARENT | unix.CLONE_PARENT_SETTID
	if spec.TimeNS {
		flags = unix.CLONE_PARENT | unix.CLONE_PARENT_SETTID
	}
	b.Syscall(b.Stage("clone", ""), unix.SYS_CLONE, imm(flags), imm(0), sysplan.Ptr(rp.child)).
		ExpectElse(0, parent)
	if spec.TimeNS {
		// By a descriptor of the namespace the owner opened: pid 1's pidfd
		// takes a ptrace check that only the owner passes.
		rp.timeNS = b.Cell()
		b.Syscall(b.Stage("setns", "time"), unix.SYS_SETNS, sysplan.Load(rp.timeNS), imm(unix.CLONE_NEWTIME))
	}
	b.Syscall(b.Stage("setsid", ""), unix.SYS_SETSID)
	// The process is visible inside the sandbox from here until its exec,
	// in the owner's memory: no process there may ptrace it (see sharing).
	b.Syscall(b.Stage("dumpable", ""), unix.SYS_PRCTL, imm(unix.PR_SET_DUMPABLE), imm(0))
	initIDSteps(b, id)
	mark()
	mark()
	if err := commandSteps(b, spec, id, rp, mark, false); err != nil {
		return nil, err
	}
	b.Place(parent)
	b.Syscall(b.Stage("exit", ""), unix.SYS_EXIT_GROUP, imm(0))
	var err error
	if rp.prog, err = b.Build(); err != nil {
		return nil, err
	}
	return rp, nil
}

// defaultSignalSteps set the signals of set (bit n-1 for signal n), which
// the owner ignores and the process inherited ignored, back to their
// default action: a struct sigaction of zeros is SIG_DFL.
func defaultSignalSteps(b *sysplan.Builder, set uint64) {
	if set == 0 {
		return
	}
	dfl := b.Alloc(32)
	for sig := 1; sig <= 64; sig++ {
		if set&(1<<(sig-1)) != 0 {
			b.Syscall(b.Stage("signals", ""), unix.SYS_RT_SIGACTION, sysplan.Imm(sig), sysplan.Ptr(dfl), sysplan.Imm(0), sysplan.Imm(8))
		}
	}
}

// loopbackUp sets IFF_UP on lo with the ioctl of a datagram socket.
func loopbackUp(b *sysplan.Builder) {
	st := b.Stage("loopback", "lo")
	sock := b.Cell()
	ifr := b.Alloc(40)
	copy(b.BytesAt(ifr, 2), "lo")
	b.PutU32(ifr.Field(16), unix.IFF_UP|unix.IFF_LOOPBACK|unix.IFF_RUNNING)
	b.Syscall(st, unix.SYS_SOCKET, sysplan.Imm(unix.AF_INET), sysplan.Imm(unix.SOCK_DGRAM|unix.SOCK_CLOEXEC), sysplan.Imm(0)).Save(sock)
	b.Syscall(st, unix.SYS_IOCTL, sysplan.Load(sock), sysplan.Imm(unix.SIOCSIFFLAGS), sysplan.Ptr(ifr))
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(sock))
}
