package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// MakeNodes makes the device nodes and FIFOs of the Node entries of p in a
// detached tmpfs of their own, each owned by the host ids that hostIDs
// returns for the entry's UID and GID (those that show as them inside),
// and sets each entry's FD to fd, the number the tmpfs is to have where p
// is applied. It returns nil when p has no Node. Only host root may make
// a device node (CAP_MKNOD in the initial user namespace).
func MakeNodes(p *Plan, fd int, hostIDs func(uid, gid int) (int, int)) (*os.File, error) {
	n := 0
	for _, m := range p.Mounts {
		if m.Kind == Node {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	mfd, err := newMount("tmpfs", tmpfsOptions(4096, int64(n+1), 0o755, 0, 0), unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, &Error{"node", "tmpfs", err}
	}
	f := os.NewFile(uintptr(mfd), "stockade-nodes")
	for i := range p.Mounts {
		m := &p.Mounts[i]
		if m.Kind != Node {
			continue
		}
		if err := makeNode(mfd, nodeName(i), m, hostIDs); err != nil {
			f.Close()
			return nil, &Error{"node", m.Target, err}
		}
		m.FD = fd
	}
	return f, nil
}

func makeNode(dir int, name string, m *Mount, hostIDs func(uid, gid int) (int, int)) error {
	uid, gid := hostIDs(m.UID, m.GID)
	if uid < 0 || gid < 0 {
		return fmt.Errorf("owner %d:%d is not mapped in the sandbox", m.UID, m.GID)
	}
	mode := uint32(unix.S_IFIFO)
	switch m.Mode.Type() {
	case fs.ModeDevice | fs.ModeCharDevice:
		mode = unix.S_IFCHR
	case fs.ModeDevice:
		mode = unix.S_IFBLK
	}
	if err := unix.Mknodat(dir, name, mode|0o600, int(m.Rdev)); err != nil {
		return err
	}
	if err := unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	// After the chown, which clears no bits of a node but would of a
	// setgid file, and regardless of the umask.
	return unix.Fchmodat(dir, name, uint32(m.Mode.Perm()), 0)
}

// errNodeParent is the error of a plan with a Node compiled without
// parentClones: only a parent can make its node (MakeNodes).
var errNodeParent = errors.New("a node is made by MakeNodes in a parent: compile the plan with parentClones")
