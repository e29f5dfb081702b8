//go:build linux && (amd64 || arm64)

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/initproc"
	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/internal/reaper"
	"github.com/stockade/stockade/internal/seccomp"
	"github.com/stockade/stockade/internal/sysplan"
	"github.com/stockade/stockade/mount"
)

// The raw start path (process model v2). The Spec that the init stage
// would receive is compiled instead into a sysplan program, run by a
// CLONE_VM child up to its execve: no Go runtime starts in any process of
// the sandbox, and the caller's memory is never copied. That child builds
// the sandbox, clones the command (pid 2, CLONE_VM|CLONE_VFORK as well)
// and, once the command has exec'd, becomes pid 1 by exec'ing the reaper
// (see internal/reaper). The owner supervises both from outside, through
// their pidfds.

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
}

// errNotCompiled says that a Spec uses something the raw path cannot do
// yet; the init stage starts it instead.
var errNotCompiled = errors.New("not compiled by the raw start path")

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
	b.Syscall(b.Stage("setsid", ""), unix.SYS_SETSID)
	initIDSteps(b, id)
	mark()

	var err error
	if rp.mounts, err = mount.Compile(b, &spec.Plan, parentClones); err != nil {
		if errors.Is(err, mount.ErrNotCompiled) {
			return nil, fmt.Errorf("%w: %w", errNotCompiled, err)
		}
		return nil, err
	}
	mark()
	host := b.String(spec.Hostname)
	b.Syscall(b.Stage("hostname", spec.Hostname), unix.SYS_SETHOSTNAME, sysplan.Ptr(host), imm(len(spec.Hostname)))
	if spec.Loopback {
		loopbackUp(b)
	}
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

// parentDeathSteps set the parent-death signal, which a change of ids
// clears, once the child's ids are final. Should the parent have died
// before, the release pipe, whose write end it holds until the exec, reads
// as hung up.
func parentDeathSteps(b *sysplan.Builder, rp *rawProgram) {
	imm := sysplan.Imm[int]
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_PRCTL, imm(unix.PR_SET_PDEATHSIG), imm(int(unix.SIGKILL)))
	if rp.release.IsNil() {
		return
	}
	// A struct pollfd: the descriptor, a copy of the pipe's, saved over
	// all eight bytes, leaves no events asked for; a hang-up is reported
	// all the same.
	pfd := b.Alloc(8)
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_FCNTL, sysplan.Load(rp.release), imm(unix.F_DUPFD_CLOEXEC), imm(0)).Save(pfd)
	ts := b.Alloc(16)
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_PPOLL, sysplan.Ptr(pfd), imm(1), sysplan.Ptr(ts), imm(0), imm(0)).Expect(0)
	b.Syscall(b.Stage("parent-death", ""), unix.SYS_CLOSE, sysplan.Load(pfd))
}

// seccompStep installs the filter f.
func seccompStep(b *sysplan.Builder, st int, f *seccomp.Filter) {
	prog := f.Instructions()
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(prog))), len(prog)*int(unsafe.Sizeof(prog[0])))
	insns := b.Bytes(raw)
	fprog := b.Alloc(16)
	b.PutU64(fprog, uint64(len(prog)))
	b.PutPtr(fprog.Field(8), insns)
	b.Syscall(st, unix.SYS_SECCOMP, sysplan.Imm(unix.SECCOMP_SET_MODE_FILTER), sysplan.Imm(0), sysplan.Ptr(fprog))
}

// newRawBuilder returns a builder, the program it builds and a function
// that adds a step taking a timestamp.
func newRawBuilder() (*sysplan.Builder, *rawProgram, func()) {
	b := sysplan.NewBuilder()
	rp := &rawProgram{landlock: b.Cell(), release: sysplan.Nil, releaseW: sysplan.Nil,
		target: sysplan.Nil, child: sysplan.Nil, report: sysplan.Nil, reaper: sysplan.Nil, kept: sysplan.Nil,
		timens: sysplan.Nil, timensLen: sysplan.Nil, timeNS: sysplan.Nil, gate: sysplan.Nil}
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
		b.Syscall(b.Stage("stdio", ""), unix.SYS_DUP3, sysplan.Load(rp.stdio[i]), imm(i), imm(0))
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

// confineSteps drops every privilege as the init's dropPrivileges does,
// for the command itself: the bounding set, the command's ids, the kept
// capabilities in every set (ambient ones for a command that is not
// root), no_new_privs, the Landlock domain and the seccomp filter, last.
func confineSteps(b *sysplan.Builder, spec *proto.Spec, id identity, rp *rawProgram) error {
	imm := sysplan.Imm[int]
	kept := map[int]bool{}
	for _, c := range spec.Caps {
		kept[c] = true
	}
	st := b.Stage("capabilities", "")
	if len(spec.Caps) > 0 && spec.UID != 0 {
		b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_SET_KEEPCAPS), imm(1))
	}
	for c := 0; c <= linux.LastCap(); c++ {
		if !kept[c] {
			b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAPBSET_DROP), imm(c))
		}
	}
	if spec.SetGroups {
		b.Syscall(b.Stage("setgroups", ""), unix.SYS_SETGROUPS, imm(0), imm(0))
	}
	b.Syscall(b.Stage("setresgid", ""), unix.SYS_SETRESGID, imm(spec.GID), imm(spec.GID), imm(spec.GID))
	b.Syscall(b.Stage("setresuid", ""), unix.SYS_SETRESUID, imm(spec.UID), imm(spec.UID), imm(spec.UID))
	parentDeathSteps(b, rp)
	// struct __user_cap_header_struct, then two __user_cap_data_struct.
	hdr := b.Alloc(8 + 24)
	b.PutU32(hdr, unix.LINUX_CAPABILITY_VERSION_3)
	var set [2]uint32
	for _, c := range spec.Caps {
		set[c/32] |= 1 << (uint(c) % 32)
	}
	for i := range set {
		d := hdr.Field(8 + 12*i)
		b.PutU32(d, set[i])          // effective
		b.PutU32(d.Field(4), set[i]) // permitted
		b.PutU32(d.Field(8), set[i]) // inheritable
	}
	b.Syscall(st, unix.SYS_CAPSET, sysplan.Ptr(hdr), sysplan.Ptr(hdr.Field(8)))
	b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAP_AMBIENT), imm(unix.PR_CAP_AMBIENT_CLEAR_ALL), imm(0), imm(0), imm(0))
	if spec.UID != 0 {
		for _, c := range spec.Caps {
			b.Syscall(st, unix.SYS_PRCTL, imm(unix.PR_CAP_AMBIENT), imm(unix.PR_CAP_AMBIENT_RAISE), imm(c), imm(0), imm(0))
		}
	}
	b.Syscall(b.Stage("no-new-privs", ""), unix.SYS_PRCTL, imm(unix.PR_SET_NO_NEW_PRIVS), imm(1), imm(0), imm(0), imm(0))
	if spec.Landlock != nil {
		landlockSteps(b, spec.Landlock, spec.LandlockStrict, rp.landlock)
	}
	if len(spec.Seccomp) > 0 {
		var f seccomp.Filter
		if err := f.UnmarshalBinary(spec.Seccomp); err != nil {
			return err
		}
		seccompStep(b, b.Stage("seccomp", ""), &f)
	}
	return nil
}

// landlockSteps enforces r on the child. In best effort a failure skips
// the rest and leaves its errno in the cell result; strict, it fails the
// start.
func landlockSteps(b *sysplan.Builder, r *landlock.Ruleset, strict bool, result sysplan.Ref) {
	st := b.Stage("landlock", "")
	done := b.NewLabel()
	fail := func(s *sysplan.Step) *sysplan.Step {
		if !strict {
			s.OnErr(sysplan.AnyErrno, done)
		}
		return s.Save(result)
	}
	attr := b.Alloc(24)
	b.PutU64(attr, r.HandledFS)
	b.PutU64(attr.Field(8), r.HandledNet)
	b.PutU64(attr.Field(16), r.Scoped)
	size := 8
	switch {
	case r.Scoped != 0:
		size = 24
	case r.HandledNet != 0:
		size = 16
	}
	rs, root := b.Cell(), b.Cell()
	after2 := b.NewLabel()
	b.PutU64(rs, ^uint64(0))
	b.PutU64(root, ^uint64(0))
	// Rule paths are resolved from the root, not the working directory.
	fail(b.Syscall(st, unix.SYS_OPENAT, sysplan.Imm(unix.AT_FDCWD), sysplan.Ptr(b.String("/")), sysplan.Imm(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC))).Save(root)
	b.PutU64(result, 1) // not in force until restrict_self says so
	fail(b.Syscall(st, unix.SYS_LANDLOCK_CREATE_RULESET, sysplan.Ptr(attr), sysplan.Imm(size), sysplan.Imm(0))).Save(rs)
	how := b.Alloc(24)
	b.PutU64(how, unix.O_PATH|unix.O_CLOEXEC)
	b.PutU64(how.Field(16), unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	for _, p := range r.Paths {
		// struct landlock_path_beneath_attr is packed: the access rights,
		// then the descriptor, which the open saves straight into it; fa
		// is the same rule with the rights a file can take.
		pa, fa := b.Alloc(16), b.Alloc(16)
		b.PutU64(pa, p.Access)
		b.PutU64(fa, p.Access&landlock.FileRights)
		skip, file, next := b.NewLabel(), b.NewLabel(), b.NewLabel()
		// A rule whose path cannot be resolved inside the root is left
		// out, as Apply does: a rule only ever allows.
		b.Syscall(st, unix.SYS_OPENAT2, sysplan.Load(root), sysplan.Ptr(b.String(p.Path)), sysplan.Ptr(how), sysplan.Imm(24)).
			Save(pa.Field(8)).OnErr(sysplan.AnyErrno, skip)
		b.PutU64(fa.Field(8), 0)
		// The kernel refuses directory rights on a file: then only the
		// file rights.
		fail(b.Syscall(st, unix.SYS_LANDLOCK_ADD_RULE, sysplan.Load(rs), sysplan.Imm(unix.LANDLOCK_RULE_PATH_BENEATH), sysplan.Ptr(pa), sysplan.Imm(0)).
			OnErr(uint64(unix.EINVAL), file))
		b.Jump(next)
		b.Place(file)
		b.Syscall(st, unix.SYS_FCNTL, sysplan.Load(pa.Field(8)), sysplan.Imm(unix.F_DUPFD_CLOEXEC), sysplan.Imm(0)).Save(fa.Field(8))
		fail(b.Syscall(st, unix.SYS_LANDLOCK_ADD_RULE, sysplan.Load(rs), sysplan.Imm(unix.LANDLOCK_RULE_PATH_BENEATH), sysplan.Ptr(fa), sysplan.Imm(0)))
		b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(fa.Field(8)))
		b.Place(next)
		b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(pa.Field(8)))
		b.Place(skip)
	}
	for _, p := range r.Ports {
		a := b.Alloc(16)
		b.PutU64(a, p.Access)
		b.PutU64(a.Field(8), uint64(p.Port))
		fail(b.Syscall(st, unix.SYS_LANDLOCK_ADD_RULE, sysplan.Load(rs), sysplan.Imm(2), sysplan.Ptr(a), sysplan.Imm(0)))
	}
	fail(b.Syscall(st, unix.SYS_LANDLOCK_RESTRICT_SELF, sysplan.Load(rs), sysplan.Imm(0)))
	b.Place(done)
	// The ruleset's descriptor is not close-on-exec; it may not exist.
	after := b.NewLabel()
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(rs)).OnErr(sysplan.AnyErrno, after)
	b.Place(after)
	b.Syscall(st, unix.SYS_CLOSE, sysplan.Load(root)).OnErr(sysplan.AnyErrno, after2)
	b.Place(after2)
	b.Syscall(st, unix.SYS_GETPID)
}

// execSteps starts the command: its path as given when it holds a slash,
// else each directory of PATH in turn, as a shell would.
func execSteps(b *sysplan.Builder, spec *proto.Spec) {
	argv := sysplan.Ptr(b.Strings(spec.Args))
	envp := sysplan.Ptr(b.Strings(spec.Env))
	st := b.Stage("exec", spec.Path)
	if strings.Contains(spec.Path, "/") {
		b.Syscall(st, unix.SYS_EXECVE, sysplan.Ptr(b.String(spec.Path)), argv, envp)
		return
	}
	pathEnv := initproc.DefaultPath
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	dirs := strings.Split(pathEnv, ":")
	for i, dir := range dirs {
		if dir == "" {
			dir = "."
		}
		s := b.Syscall(st, unix.SYS_EXECVE, sysplan.Ptr(b.String(path.Join(dir, spec.Path))), argv, envp)
		if i < len(dirs)-1 {
			next := b.NewLabel()
			s.OnErr(uint64(unix.ENOENT), next).OnErr(uint64(unix.EACCES), next)
			b.Place(next)
		}
	}
}

// rawStart is one start on the raw path, up to the command's exec.
type rawStart struct {
	pid, pidfd int
	run        *sysplan.Run
	relW       int  // the parent's end of the release pipe, until released
	gone       bool // the child has left the owner's memory (see sharing)
	// marks are the child's stage timestamps.
	marks      []int64
	landlocked bool
	// report is the owner's end of the reaper's report pipe, and cmd the
	// command's pidfd, copied from pid 1 (-1 if none).
	report, cmd int
}

// launchRaw clones the child that runs rp, on the calling goroutine's
// thread (a spawner's: the parent-death signal follows it, and so do its
// network namespace and, on cgroup v1, its cgroup). The child waits to be
// released by finish. files are stdin, stdout, stderr and the extra files;
// sources the parent's clones of the root and the bind sources, in plan
// order. A negative cgroupFD means no CLONE_INTO_CGROUP.
func launchRaw(rp *rawProgram, flags uint64, cgroupFD int, files []int, sources []int, values ...cellValue) (rs *rawStart, err error) {
	run, err := rp.prog.NewRun()
	if err != nil {
		return nil, err
	}
	for _, c := range values {
		run.Set(c.ref, c.v)
	}
	// Every descriptor the child dups into 0, 1, 2, 3 ... must be above
	// those numbers, and so must the failure pipe.
	low := 0
	if rp.command {
		low = 3 + len(rp.extra)
	}
	minFD := max(low, reaper.MinFD)
	rel, report := [2]int{-1, -1}, [2]int{-1, -1}
	if !rp.release.IsNil() {
		if err := unix.Pipe2(rel[:], unix.O_CLOEXEC); err != nil {
			run.Release()
			return nil, err
		}
		defer unix.Close(rel[0])
		run.Set(rp.release, uint64(rel[0]))
		run.Set(rp.releaseW, uint64(rel[1]))
	}
	var dups []int
	defer func() {
		for _, fd := range dups {
			unix.Close(fd)
		}
		if report[1] >= 0 {
			unix.Close(report[1])
		}
		if err != nil {
			if rel[1] >= 0 {
				unix.Close(rel[1])
			}
			if report[0] >= 0 {
				unix.Close(report[0])
			}
			run.Release()
		}
	}()
	if !rp.timens.IsNil() {
		off, err := linux.TimeNamespaceOffsets()
		if err != nil {
			return nil, err
		}
		copy(run.Bytes(rp.timens, 64), off)
		run.Set(rp.timensLen, uint64(len(off)))
	}
	if !rp.report.IsNil() {
		mfd, err := reaper.Open()
		if err != nil {
			return nil, &SetupError{Stage: "reaper", Err: err}
		}
		run.Set(rp.reaper, uint64(mfd))
		if err := unix.Pipe2(report[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return nil, err
		}
		w, err := unix.FcntlInt(uintptr(report[1]), unix.F_DUPFD_CLOEXEC, minFD)
		if err != nil {
			return nil, err
		}
		unix.Close(report[1])
		report[1] = w
		run.Set(rp.report, uint64(w))
	}
	if len(files) != low {
		return nil, fmt.Errorf("rawstart: %d descriptors for %d", len(files), low)
	}
	for i, fd := range files {
		if fd < low {
			d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, low)
			if err != nil {
				return nil, err
			}
			dups = append(dups, d)
			fd = d
		}
		if i < 3 {
			run.Set(rp.stdio[i], uint64(fd))
		} else {
			run.Set(rp.extra[i-3], uint64(fd))
		}
	}
	var cells []sysplan.Ref
	if rp.mounts != nil {
		cells = rp.mounts.BindFDs
		if !rp.mounts.RootFD.IsNil() {
			cells = append([]sysplan.Ref{rp.mounts.RootFD}, cells...)
		}
	}
	k := 0
	for _, c := range cells {
		if c.IsNil() {
			continue
		}
		if k >= len(sources) {
			return nil, errors.New("rawstart: fewer sources than the plan binds")
		}
		run.Set(c, uint64(sources[k]))
		k++
	}
	ca := sysplan.CloneArgs{Flags: flags, MinFD: minFD}
	if cgroupFD >= 0 {
		ca.Flags |= unix.CLONE_INTO_CGROUP
		ca.CgroupFD = cgroupFD
	}
	sharing.begin()
	pid, pidfd, err := run.Start(ca)
	if err != nil {
		sharing.end()
		return nil, &SetupError{Stage: "clone", Errno: errnoOf(err), Err: err}
	}
	return &rawStart{pid: pid, pidfd: pidfd, run: run, relW: rel[1], report: report[0], cmd: -1}, nil
}

// cellValue is a value launchRaw stores in a cell before the clone.
type cellValue struct {
	ref sysplan.Ref
	v   uint64
}

// sharing counts the raw children that share the owner's memory, to give
// the owner back its dumpable flag once none does. A child's change of
// credentials, and its own PR_SET_DUMPABLE, clear the flag of the memory
// it shares, the owner's; restored while another child still runs its
// setup, it would make that child, and through it the owner, open to a
// ptrace by a process of the same ids.
var sharing shareCount

type shareCount struct {
	mu       sync.Mutex
	n        int
	dumpable bool // the owner's flag before the first of the n
}

func (c *shareCount) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		c.dumpable = d == 1
	}
	c.n++
}

// end is called once a child has left the owner's memory (exec'd or
// died).
func (c *shareCount) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 && c.dumpable {
		unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
	}
}

// finish writes the child's id maps, calls before (placement in a cgroup
// by pid, the network's links) and releases the child, and waits until
// the command runs. On error the child is killed and reaped.
func (rs *rawStart) finish(ctx context.Context, rp *rawProgram, id identity, before func(pid int) error) error {
	kill := func(err error) error {
		if rs.relW >= 0 {
			unix.Close(rs.relW)
			rs.relW = -1
		}
		unix.PidfdSendSignal(rs.pidfd, unix.SIGKILL, nil, 0)
		waitPidfd(rs.pidfd)
		unix.Close(rs.pidfd)
		if rs.report >= 0 {
			unix.Close(rs.report)
		}
		rs.left()
		rs.run.Release()
		return err
	}
	if id.viaHelpers {
		if err := writeMaps(ctx, rs.pid, id); err != nil {
			return kill(err)
		}
	} else if err := writeIDMaps(rs.pid, id); err != nil {
		return kill(setupErr("id-maps", "", err))
	}
	if before != nil {
		if err := before(rs.pid); err != nil {
			return kill(err)
		}
	}
	if _, err := unix.Write(rs.relW, []byte{1}); err != nil {
		return kill(setupErr("handshake", "", err))
	}
	werr := rs.run.Wait(ctx)
	if werr == nil {
		// The exec happened: the child needs the pipe no more (see the
		// parent-death step).
		unix.Close(rs.relW)
		rs.relW = -1
	}
	if werr == nil || !errors.Is(werr, ctx.Err()) {
		rs.left()
	}
	if werr != nil {
		var se *sysplan.StepError
		if errors.As(werr, &se) {
			return kill(&SetupError{Stage: se.Op, Path: se.Path, Errno: se.Errno, Err: se.Errno})
		}
		return kill(setupErr("start", "", werr))
	}
	for i := 0; i < rp.nmarks; i++ {
		ts := rs.run.Bytes(rp.marks.Field(16*i), 16)
		t := *(*unix.Timespec)(unsafe.Pointer(&ts[0]))
		rs.marks = append(rs.marks, t.Nano())
	}
	rs.landlocked = run0(rs.run.Get(rp.landlock))
	if !rp.kept.IsNil() && rp.command {
		// A command that has ended already took the reaper with it: then
		// there is nothing left to signal.
		if fd, err := pidfdGetfd(rs.pidfd, int(int32(rs.run.Get(rp.kept)))); err == nil {
			rs.cmd = fd
		}
	}
	rs.run.Release()
	return nil
}

func run0(v uint64) bool { return v == 0 }

// left records that the child no longer shares the owner's memory.
func (rs *rawStart) left() {
	if !rs.gone {
		rs.gone = true
		sharing.end()
	}
}

// writeIDMaps writes the child's uid and gid maps as the init's clone
// would have.
func writeIDMaps(pid int, id identity) error {
	line := func(m []syscall.SysProcIDMap) []byte {
		var s strings.Builder
		for _, e := range m {
			fmt.Fprintf(&s, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
		}
		return []byte(s.String())
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), line(id.uidMap), 0); err != nil {
		return err
	}
	if !id.setGroups {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
			return err
		}
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), line(id.gidMap), 0)
}

// waitPidfd waits for the child behind pidfd, which stays open.
func waitPidfd(pidfd int) (unix.WaitStatus, unix.Rusage) {
	var info unix.Siginfo
	var ru unix.Rusage
	for {
		_, _, errno := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(pidfd), uintptr(unsafe.Pointer(&info)), unix.WEXITED, uintptr(unsafe.Pointer(&ru)), 0)
		if errno != unix.EINTR {
			break
		}
	}
	runtime.KeepAlive(&info)
	// si_status follows si_pid and si_uid in the union.
	status := *(*int32)(unsafe.Add(unsafe.Pointer(&info), 24))
	if info.Code == 1 { // CLD_EXITED
		return unix.WaitStatus(status << 8), ru
	}
	return unix.WaitStatus(status), ru
}

// pidfdGetfd copies the descriptor fd of the process behind pidfd,
// close-on-exec.
func pidfdGetfd(pidfd, fd int) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), uintptr(fd), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	errors.As(err, &e)
	return e
}
