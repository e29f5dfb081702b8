//go:build linux && (amd64 || arm64)

package sandbox

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/sysplan"
)

// newUserNS makes a user namespace with id's maps and returns a
// descriptor of it: a child of no Go runtime is cloned into a new user
// namespace and waits on a pipe while the owner writes its maps and opens
// its namespace, then exits. The namespace outlives it through the
// descriptor.
func newUserNS(id identity) (int, error) {
	b := sysplan.NewBuilder()
	rfd, wfd := b.Cell(), b.Cell()
	// The child waits for a byte, not for the end of the pipe: a child of
	// another start, cloned meanwhile, holds a copy of this write end (a
	// clone copies every descriptor, close-on-exec or not), and two such
	// children waiting for each other's end would wait for ever. Should the
	// owner die first, the child dies with it.
	b.Syscall(b.Stage("userns-wait", ""), unix.SYS_CLOSE, sysplan.Load(wfd))
	b.Syscall(b.Stage("userns-wait", ""), unix.SYS_PRCTL, sysplan.Imm(unix.PR_SET_PDEATHSIG), sysplan.Imm(int(unix.SIGKILL)))
	b.Syscall(b.Stage("userns-wait", ""), unix.SYS_READ, sysplan.Load(rfd), sysplan.Ptr(b.Cell()), sysplan.Imm(1))
	b.Syscall(b.Stage("userns-exit", ""), unix.SYS_EXIT_GROUP, sysplan.Imm(0))
	prog, err := b.Build()
	if err != nil {
		return -1, err
	}
	run, err := prog.NewRun()
	if err != nil {
		return -1, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		run.Release()
		return -1, setupErr("idmap-userns", "", err)
	}
	defer unix.Close(p[0])
	run.Set(rfd, uint64(p[0]))
	run.Set(wfd, uint64(p[1]))
	pid, pidfd, err := run.Start(sysplan.CloneArgs{Flags: unix.CLONE_NEWUSER})
	if err != nil {
		unix.Close(p[1])
		run.Release()
		return -1, setupErr("idmap-userns", "", err)
	}
	fd, err := func() (int, error) {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), idMapText(id.uidMap), 0); err != nil {
			return -1, err
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
			return -1, err
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), idMapText(id.gidMap), 0); err != nil {
			return -1, err
		}
		return unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}()
	// The child reads the byte and exits.
	unix.Write(p[1], []byte{0})
	unix.Close(p[1])
	run.Wait(context.Background())
	waitPidfd(pidfd)
	unix.Close(pidfd)
	run.Release()
	if err != nil {
		return -1, setupErr("idmap-userns", "", err)
	}
	return fd, nil
}
