//go:build linux && (amd64 || arm64)

package sysplan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether this architecture has an interpreter.
const Supported = true

//go:noescape
func clone3(args unsafe.Pointer, size uintptr, hdr uintptr) (pid uintptr, errno uintptr)

// stackSize is the child's stack. The interpreter never pushes anything and
// takes no signal, so the stack is only there because the kernel wants
// one with CLONE_VM.
const stackSize = 4096

// Run is one start of a Program: a private, relocated copy of its image in
// memory of its own, outside the Go heap, so that the child can read and
// write it while the caller goes on.
type Run struct {
	p     *Program
	mem   []byte // the mapping: the stack, then the image
	image []byte // the copy of the image inside mem
	base  uintptr

	errR   *os.File // the read end of the failure pipe, once started
	pid    int
	waited bool // Wait saw the child leave
	done   bool
}

// regions keeps a few mappings of finished starts for the next ones.
var regions = make(chan []byte, 16)

// NewRun prepares a start of p.
func (p *Program) NewRun() (*Run, error) {
	size := stackSize + len(p.image)
	var mem []byte
	select {
	case mem = <-regions:
		if len(mem) < size {
			unix.Munmap(mem)
			mem = nil
		}
	default:
	}
	if mem == nil {
		var err error
		mem, err = unix.Mmap(-1, 0, max(size, 64<<10), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, fmt.Errorf("map a start's memory: %w", err)
		}
	}
	r := &Run{p: p, mem: mem, image: mem[stackSize:size]}
	copy(r.image, p.image)
	r.base = uintptr(unsafe.Pointer(&r.image[0]))
	for _, off := range p.relocs {
		v := binary.NativeEndian.Uint64(r.image[off:])
		binary.NativeEndian.PutUint64(r.image[off:], v+uint64(r.base))
	}
	return r, nil
}

// Set stores v in the cell c of this start.
func (r *Run) Set(c Ref, v uint64) {
	binary.NativeEndian.PutUint64(r.image[r.p.arena+c.off:], v)
}

// Get returns what the cell c holds.
func (r *Run) Get(c Ref) uint64 {
	return binary.NativeEndian.Uint64(r.image[r.p.arena+c.off:])
}

// Bytes returns the n bytes at c, as the child left them.
func (r *Run) Bytes(c Ref, n int) []byte {
	return r.image[r.p.arena+c.off : r.p.arena+c.off+n]
}

// CloneArgs are the clone3 arguments of a start that the caller chooses.
type CloneArgs struct {
	// Flags are clone flags; CLONE_VM, CLONE_PIDFD and CLONE_CLEAR_SIGHAND
	// are always added.
	Flags uint64
	// CgroupFD, with CLONE_INTO_CGROUP in Flags, is the cgroup to start in.
	CgroupFD int
	// MinFD is the lowest number the child's end of the failure pipe may
	// take: a program that dups descriptors onto fixed numbers keeps them
	// below it.
	MinFD int
}

// interpret runs a program on the calling thread, which it ends: for the
// tests that run the interpreter under qemu-user, which has no clone3.
func interpret(hdr uintptr)

// RunHere runs the program on the calling thread, with errFD as its
// failure pipe, and never returns: the program ends the process in execve
// or exit_group. It is for tests of the interpreter on an emulated
// architecture; a sandbox starts with Start.
func (r *Run) RunHere(errFD int) {
	binary.NativeEndian.PutUint64(r.image[hdrErrFD:], uint64(errFD))
	runtime.LockOSThread()
	interpret(r.base)
}

// cloneArgs is struct clone_args of linux/sched.h.
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
}

// Start clones the child, which runs the program at once. It returns the
// child's pid and a pidfd the caller owns. The calling goroutine should be
// locked to a thread that outlives the child when the program asks for a
// parent-death signal, which follows the thread.
func (r *Run) Start(a CloneArgs) (pid, pidfd int, err error) {
	if r.errR != nil || r.done {
		return 0, -1, errors.New("sysplan: a Run starts once")
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return 0, -1, fmt.Errorf("failure pipe: %w", err)
	}
	if fds[1] < a.MinFD {
		high, err := unix.FcntlInt(uintptr(fds[1]), unix.F_DUPFD_CLOEXEC, a.MinFD)
		unix.Close(fds[1])
		if err != nil {
			unix.Close(fds[0])
			return 0, -1, fmt.Errorf("failure pipe: %w", err)
		}
		fds[1] = high
	}
	binary.NativeEndian.PutUint64(r.image[hdrErrFD:], uint64(fds[1]))
	// The kernel writes an int: 32 bits.
	fd32 := int32(-1)
	args := cloneArgs{
		flags:      a.Flags | unix.CLONE_VM | unix.CLONE_PIDFD | unix.CLONE_CLEAR_SIGHAND,
		pidfd:      uint64(uintptr(unsafe.Pointer(&fd32))),
		exitSignal: uint64(unix.SIGCHLD),
		stack:      uint64(uintptr(unsafe.Pointer(&r.mem[0]))),
		stackSize:  stackSize,
	}
	if a.Flags&unix.CLONE_INTO_CGROUP != 0 {
		args.cgroup = uint64(a.CgroupFD)
	}
	p, errno := clone3(unsafe.Pointer(&args), unsafe.Sizeof(args), r.base)
	unix.Close(fds[1])
	if errno != 0 {
		unix.Close(fds[0])
		return 0, -1, unix.Errno(errno)
	}
	runtime.KeepAlive(&fd32)
	// The pidfd was written by the kernel before clone3 returned, close-
	// on-exec.
	pidfd = int(fd32)
	r.pid = int(p)
	// Non-blocking, so that the runtime's poller serves it and Wait can
	// stop at a deadline.
	unix.SetNonblock(fds[0], true)
	r.errR = os.NewFile(uintptr(fds[0]), "sysplan-failure")
	return int(p), pidfd, nil
}

// StepError is a step of a program that failed in the child.
type StepError struct {
	Stage
	Errno unix.Errno
}

func (e *StepError) Error() string {
	if e.Path == "" {
		return e.Op + ": " + e.Errno.Error()
	}
	return e.Op + " " + e.Path + ": " + e.Errno.Error()
}

func (e *StepError) Unwrap() error { return e.Errno }

// Wait waits until the child has exec'd (nil), or failed a step
// (*StepError), or died before either (the error says so; the caller
// learns how from the pidfd). It returns ctx's error when ctx ends first;
// the child then still runs and the caller must kill it. The caller reads
// what the child left in the cells, then calls Release.
func (r *Run) Wait(ctx context.Context) error {
	if r.errR == nil {
		return errors.New("sysplan: Wait before Start")
	}
	stop := context.AfterFunc(ctx, func() { r.errR.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var rec [16]byte
	n, err := io.ReadFull(r.errR, rec[:])
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ctx.Err()
	}
	r.waited = true
	switch {
	case n == 16:
		stage := int64(binary.NativeEndian.Uint64(rec[:8]))
		errno := binary.NativeEndian.Uint64(rec[8:])
		return &StepError{Stage: r.p.StageOf(int(stage)), Errno: unix.Errno(errno)}
	case n == 0 && errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("sysplan: short failure report (%d bytes): %v", n, err)
	}
}

// Release returns the Run's memory once the child has left it: at once
// after Wait returned nil or a *StepError, else when the child's end of
// the failure pipe closes, that is, when it has exec'd or died (kill it
// first).
func (r *Run) Release() {
	if r.errR != nil && !r.waited {
		// Drain what is left so that the memory is returned only once the
		// child is gone: its copy of the pipe closes when it dies.
		r.errR.SetReadDeadline(time.Time{})
		io.Copy(io.Discard, r.errR)
	}
	r.release()
}

func (r *Run) release() {
	if r.done {
		return
	}
	r.done = true
	if r.errR != nil {
		r.errR.Close()
	}
	clear(r.mem[:stackSize+len(r.image)])
	select {
	case regions <- r.mem:
	default:
		unix.Munmap(r.mem)
	}
	r.mem, r.image = nil, nil
}
