//go:build linux && (amd64 || arm64)

package mount

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/sysplan"
)

// exitProgram is a sysplan program that ends its process at once: the
// child that holds a new user namespace just long enough for its maps to
// be written and the namespace opened. An exited child that is not yet
// reaped keeps its credentials, and with them the namespace.
var exitProgram = sync.OnceValues(func() (*sysplan.Program, error) {
	b := sysplan.NewBuilder()
	b.Syscall(b.Stage("exit", ""), unix.SYS_EXIT_GROUP, sysplan.Imm(0))
	return b.Build()
})

// idmapUserns returns a descriptor of a new user namespace, owned by the
// caller, whose uid_map and gid_map are uidMap and gidMap (lines of
// "inside outside count"). The caller needs CAP_SETUID and CAP_SETGID for
// maps other than its own ids.
func idmapUserns(uidMap, gidMap string) (int, error) {
	p, err := exitProgram()
	if err != nil {
		return -1, err
	}
	run, err := p.NewRun()
	if err != nil {
		return -1, err
	}
	pid, pidfd, err := run.Start(sysplan.CloneArgs{Flags: unix.CLONE_NEWUSER})
	if err != nil {
		run.Release()
		return -1, fmt.Errorf("clone a user namespace: %w", err)
	}
	defer func() {
		// The child's only step is exit_group: Release returns once it
		// has, and the wait reaps it.
		run.Release()
		unix.Waitid(unix.P_PIDFD, pidfd, nil, unix.WEXITED, nil)
		unix.Close(pidfd)
	}()
	// Until it is reaped, the pid is the child's, exited or not.
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	if err := os.WriteFile(dir+"uid_map", []byte(uidMap), 0); err != nil {
		return -1, err
	}
	if err := os.WriteFile(dir+"gid_map", []byte(gidMap), 0); err != nil {
		return -1, err
	}
	fd, err := unix.Open(dir+"ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the user namespace: %w", err)
	}
	return fd, nil
}

// idmap makes the detached mount fd (and every mount beneath it) an
// idmapped mount on which the host ids uid and gid act as owner.UID and
// owner.GID: files of the owner appear there as theirs, and what they
// create lands on the file system as the owner's. Every other id of the
// file system appears as the overflow id (nobody), and cannot be written
// as.
func idmap(fd int, uid, gid uint32, owner Owner) error {
	ns, err := idmapUserns(fmt.Sprintf("%d %d 1\n", owner.UID, uid), fmt.Sprintf("%d %d 1\n", owner.GID, gid))
	if err != nil {
		return err
	}
	defer unix.Close(ns)
	return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE,
		&unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns)})
}

// IDMapSource makes f, a detached copy of a Bind's source made by
// CloneSource, an idmapped mount on which the host ids uid and gid (a
// sandbox's user) act as owner: the owner's files appear owned by them,
// and what they create there lands on the host as the owner's. Other ids
// of the file system appear there as the overflow id (nobody, 65534) and
// cannot be written as. It needs CAP_SYS_ADMIN over the user namespace
// that mounted the file system (host root for the host's file systems),
// and a file system that supports idmapped mounts: the error wraps EINVAL
// when it does not (tmpfs before Linux 6.3, NFS, ...). Linux 5.12.
func IDMapSource(f *os.File, uid, gid uint32, owner Owner) error {
	if err := idmap(int(f.Fd()), uid, gid, owner); err != nil {
		return &Error{"idmap", f.Name(), err}
	}
	return nil
}
