package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"

	"golang.org/x/sys/unix"
)

// Error is a step of Apply that failed: Op names the step ("bind", "tmpfs",
// "pivot_root" …), Path the file it was working on (a host source or a
// target inside the sandbox), and Err the cause, usually a unix.Errno.
type Error struct {
	Op   string
	Path string
	Err  error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Path + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNotDevNull reports that the host's /dev/null, used to mask files, is
// not the null device.
var ErrNotDevNull = errors.New("host /dev/null is not the null character device")

// Apply builds the plan in the current mount namespace and makes it the root
// of the calling process, detaching the old root. It must run in a mount
// namespace of its own, with CAP_SYS_ADMIN over it; nothing it does is
// visible outside that namespace. On error the namespace is left half built
// and should be thrown away with the process.
func Apply(p *Plan) error {
	a := applier{plan: p, devNull: -1, nodes: -1, lateBind: lateBinds(p)}
	defer a.close()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return &Error{"make-private", "/", err}
	}
	if err := a.cloneSources(); err != nil {
		return err
	}
	if err := a.makeRoot(); err != nil {
		return err
	}
	for i := range p.Mounts {
		if err := a.place(i); err != nil {
			return err
		}
	}
	if err := a.seal(); err != nil {
		return err
	}
	if err := a.pivot(); err != nil {
		return err
	}
	return a.propagate()
}

type applier struct {
	plan    *Plan
	sources []int // a detached clone per Bind entry, -1 for others
	// lateBind marks the Bind entries cloned again where they are placed
	// (see lateBinds).
	lateBind []bool
	nodes    int   // the tmpfs of MakeNodes, attached in the old root; -1: none
	devNull  int   // O_PATH fd of the host's /dev/null, when a Mask needs it
	root     int   // the new root's mount, attached at "/"
	sealRO   []int // tmpfs mounts to make read-only at the end
	props    []propMount
	fds      []int // everything to close
}

// propMount is an entry's mount, attached, and the propagation it gets
// once the root is in place.
type propMount struct {
	fd     int
	target string
	prop   Propagation
}

func (a *applier) keep(fd int) int {
	a.fds = append(a.fds, fd)
	return fd
}

func (a *applier) close() {
	for _, fd := range a.fds {
		unix.Close(fd)
	}
}

// cloneSources takes a detached copy of every host path the plan binds,
// while the host tree is still in view and before anything is mounted over
// it. Read-only and nosuid are applied to the copy before it is attached.
func (a *applier) cloneSources() error {
	a.sources = make([]int, len(a.plan.Mounts))
	for i, m := range a.plan.Mounts {
		a.sources[i] = -1
		switch m.Kind {
		case Bind:
			if m.FD > 0 {
				a.sources[i] = a.keep(m.FD)
				continue
			}
			if a.lateBind[i] {
				continue // cloned where it is placed
			}
			fd, err := cloneTree(unix.AT_FDCWD, m.Source, bindAttrs(m))
			if err != nil {
				return &Error{"bind", m.Source, err}
			}
			a.sources[i] = a.keep(fd)
		case Node:
			if a.nodes >= 0 {
				continue
			}
			if m.FD <= 0 {
				return &Error{"node", m.Target, errNodeParent}
			}
			a.nodes = a.keep(m.FD)
			if err := unix.MoveMount(m.FD, "", unix.AT_FDCWD, stagePoint(true), unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return &Error{"node", stagePoint(true), err}
			}
		case Mask:
			if a.devNull >= 0 {
				continue
			}
			fd, err := unix.Open("/dev/null", unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				return &Error{"mask", "/dev/null", err}
			}
			a.devNull = a.keep(fd)
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				return &Error{"mask", "/dev/null", err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
				return &Error{"mask", "/dev/null", ErrNotDevNull}
			}
		}
	}
	return nil
}

// reclone replaces the parent's clone of the Bind entry i (m.FD), placed
// after a mount of the plan, by a clone of it made now, so that the mount
// table lists it after the entries before it (see lateBinds). A detached
// clone of the parent's belongs to no mount namespace of this process and
// cannot be cloned: it is first attached in the old root, still in view
// (the new root is attached over "/", which an absolute path does not
// cross), at stagePoint(dir), and goes with the old root at the pivot.
// Where that fails the parent's clone is placed as it is, out of order.
// (A late bind of the applier's own is simply cloned where it is placed.)
func (a *applier) reclone(i int, dir bool) {
	if unix.MoveMount(a.sources[i], "", unix.AT_FDCWD, stagePoint(dir), unix.MOVE_MOUNT_F_EMPTY_PATH) != nil {
		return
	}
	if fd, err := unix.OpenTree(a.sources[i], "", reclone); err == nil {
		a.sources[i] = a.keep(fd)
	}
}

// stagePoint is where a parent's clone of a directory (dir) or of a file,
// or the tmpfs of MakeNodes, is attached in the host's tree to be cloned: a path every process can
// reach, of the type a mount over it needs. The mount is made in the
// sandbox's own namespace, already private, and leaves with the old root.
func stagePoint(dir bool) string {
	if dir {
		return "/proc"
	}
	return "/proc/version"
}

// reclone are the flags of open_tree(2) that clone a mount fd's tree.
const reclone = unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_RECURSIVE | unix.AT_EMPTY_PATH

// CloneSource returns a detached copy of the host path that the Bind entry
// m mounts, with m's attributes already set, for a later Apply to attach
// through Mount.FD. It lets a privileged parent resolve a source with its
// own rights, where the sandbox's init might not be allowed to; so that
// no one lends themselves those rights by a link, it follows a symbolic
// link in the path only when root or the caller owns it, and fails with an
// error wrapping ErrUntrustedLink otherwise.
func CloneSource(m Mount) (*os.File, error) {
	fd, err := cloneSource(m.Source, bindAttrs(m))
	if err != nil {
		return nil, &Error{"bind", m.Source, err}
	}
	return os.NewFile(uintptr(fd), m.Source), nil
}

// CloneRoot is CloneSource for the root directory of a plan.
func CloneRoot(r Root) (*os.File, error) {
	fd, err := cloneSource(r.Dir, rootAttrs(r))
	if err != nil {
		return nil, &Error{"bind", r.Dir, err}
	}
	return os.NewFile(uintptr(fd), r.Dir), nil
}

// CloneRootMapped is CloneRoot idmapped through the user namespace open
// as userns, as CloneLayer maps a layer: a file of on-disk uid N shows as
// N inside a sandbox whose user namespace maps ids as userns does, and
// what that sandbox's root writes lands as uid 0. The error wraps EINVAL
// for a file system that cannot be idmapped. Linux 5.12.
func CloneRootMapped(r Root, userns int) (*os.File, error) {
	return cloneMapped(r.Dir, rootAttrs(r), userns, "bind")
}

func rootAttrs(r Root) uint64 {
	attrs := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
	if !r.Writable {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	return attrs
}

func bindAttrs(m Mount) uint64 {
	attrs := uint64(unix.MOUNT_ATTR_NOSUID)
	if !m.Device {
		attrs |= unix.MOUNT_ATTR_NODEV
	}
	if !m.Writable {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	return attrs
}

// cloneTree returns a detached, recursive, private copy of the mount tree
// at dirfd and name with attrs set on every mount in it.
func cloneTree(dirfd int, name string, attrs uint64) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_RECURSIVE)
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	fd, err := unix.OpenTree(dirfd, name, flags)
	if err != nil {
		return -1, err
	}
	// A clone of a shared mount is a peer of it: without MS_PRIVATE, what
	// the sandbox mounts on the clone would appear at the source on the
	// host too (where / is shared, as systemd makes it).
	err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attrs, Propagation: unix.MS_PRIVATE})
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// makeRoot creates the new root (a tmpfs, or a clone of a host directory)
// and attaches it on top of the current root, so that pivot_root can later
// swap the two.
func (a *applier) makeRoot() error {
	r := a.plan.Root
	var fd int
	var err error
	if r.Overlay != nil {
		if fd, err = a.makeOverlay(r.Overlay); err != nil {
			return err
		}
	} else if r.Dir == "" {
		fd, err = newTmpfs(r.Size, r.Inodes, 0o755, 0, 0, 0)
		if err != nil {
			return &Error{"tmpfs", "/", err}
		}
		a.sealRO = append(a.sealRO, fd)
	} else if r.FD > 0 {
		fd = r.FD
	} else if fd, err = cloneTree(unix.AT_FDCWD, r.Dir, rootAttrs(r)); err != nil {
		return &Error{"bind", r.Dir, err}
	}
	a.root = a.keep(fd)
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &Error{"attach-root", "/", err}
	}
	return nil
}

// newTmpfs returns a detached tmpfs mount.
func newTmpfs(size, inodes int64, mode uint32, uid, gid int, attrs uint64) (int, error) {
	return newMount("tmpfs", tmpfsOptions(size, inodes, mode, uid, gid), attrs|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
}

// tmpfsOptions are the options of a tmpfs of size bytes and inodes inodes
// (the kernel's defaults for zero), whose root has mode, uid and gid.
// withSource returns opts with the source option first: source, unless
// opts begin with one, or it is empty. The mount table shows a new file
// system's source as its device ("none" when unset); runc and crun show a
// spec's source there ("proc", "devpts", "shm" ...), and tools look for it.
func withSource(source string, opts [][2]string) [][2]string {
	if source == "" || len(opts) > 0 && opts[0][0] == "source" {
		return opts
	}
	return append([][2]string{{"source", source}}, opts...)
}

func tmpfsOptions(size, inodes int64, mode uint32, uid, gid int) [][2]string {
	opts := [][2]string{{"mode", strconv.FormatUint(uint64(mode&0o7777), 8)}}
	if size > 0 {
		opts = append(opts, [2]string{"size", strconv.FormatInt(size, 10)})
	}
	if inodes > 0 {
		opts = append(opts, [2]string{"nr_inodes", strconv.FormatInt(inodes, 10)})
	}
	if uid != 0 || gid != 0 {
		opts = append(opts, [2]string{"uid", strconv.Itoa(uid)}, [2]string{"gid", strconv.Itoa(gid)})
	}
	return opts
}

// newMount creates a detached mount of a new file system instance. An option
// with an empty value is set as a flag. The mount table shows the file
// system's type as its source unless opts name one (see withSource).
func newMount(fstype string, opts [][2]string, attrs uint64) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	for _, o := range withSource(fstype, opts) {
		if o[1] == "" {
			err = unix.FsconfigSetFlag(fsfd, o[0])
		} else {
			err = unix.FsconfigSetString(fsfd, o[0], o[1])
		}
		if err != nil {
			return -1, fmt.Errorf("option %s=%s: %w", o[0], o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	return unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(attrs))
}

// place puts entry i of the plan into the new root.
func (a *applier) place(i int) error {
	m := a.plan.Mounts[i]
	switch m.Kind {
	case Bind:
		if a.sources[i] < 0 {
			// A late bind of the applier's own (see lateBinds).
			fd, err := cloneTree(unix.AT_FDCWD, m.Source, bindAttrs(m))
			if err != nil {
				return &Error{"bind", m.Source, err}
			}
			a.sources[i] = a.keep(fd)
		}
		var st unix.Stat_t
		if err := unix.Fstat(a.sources[i], &st); err != nil {
			return &Error{"bind", m.Source, err}
		}
		dir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if a.lateBind[i] && m.FD > 0 {
			a.reclone(i, dir)
		}
		a.propagateLater(a.sources[i], m)
		return a.attach(a.sources[i], m.Target, dir, "bind")
	case Tmpfs:
		fd, err := newMount("tmpfs", withSource(m.Source, tmpfsOptions(m.Size, m.Inodes, unixMode(m.Mode), m.UID, m.GID)), unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
		if err != nil {
			return &Error{"tmpfs", m.Target, err}
		}
		a.keep(fd)
		if m.ReadOnly {
			a.sealRO = append(a.sealRO, fd)
		}
		a.propagateLater(fd, m)
		return a.attach(fd, m.Target, true, "tmpfs")
	case Node:
		fd, err := unix.OpenTree(a.nodes, nodeName(i), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return &Error{"node", m.Target, err}
		}
		return a.attach(a.keep(fd), m.Target, false, "node")
	case Proc:
		fd, err := newMount("proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return &Error{"proc", m.Target, err}
		}
		return a.attach(a.keep(fd), m.Target, true, "proc")
	case Sysfs:
		fd, err := newMount("sysfs", nil, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return &Error{"sysfs", m.Target, err}
		}
		return a.attach(a.keep(fd), m.Target, true, "sysfs")
	case Devpts:
		opts := devptsOptions(m)
		fd, err := newMount("devpts", opts, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return &Error{"devpts", m.Target, err}
		}
		return a.attach(a.keep(fd), m.Target, true, "devpts")
	case Mqueue:
		fd, err := newMount("mqueue", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return &Error{"mqueue", m.Target, err}
		}
		return a.attach(a.keep(fd), m.Target, true, "mqueue")
	case Dir:
		fd, err := a.mkdirAll(m.Target)
		if err != nil {
			return &Error{"mkdir", m.Target, err}
		}
		unix.Close(fd)
		if fd, err = a.open(m.Target, unix.O_RDONLY|unix.O_DIRECTORY); err != nil {
			return &Error{"mkdir", m.Target, err}
		}
		defer unix.Close(fd)
		return chmodOwn(fd, m, "mkdir")
	case File:
		return a.writeFile(m)
	case Write:
		fd, err := a.open(m.Target, unix.O_WRONLY|unix.O_NOFOLLOW)
		if err != nil {
			return &Error{"write", m.Target, err}
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, m.Data); err != nil {
			return &Error{"write", m.Target, err}
		}
		return nil
	case Cover:
		return a.cover(m)
	case Symlink:
		parent, err := a.mkdirAll(path.Dir(m.Target))
		if err != nil {
			return &Error{"symlink", m.Target, err}
		}
		defer unix.Close(parent)
		if err := unix.Symlinkat(m.Source, parent, path.Base(m.Target)); err != nil {
			return &Error{"symlink", m.Target, err}
		}
		return nil
	case Mask:
		return a.mask(m.Target)
	case ReadOnly:
		return a.readOnly(m.Target)
	}
	return &Error{"place", m.Target, fmt.Errorf("unknown kind %q", m.Kind)}
}

// unixMode converts permission, sticky and setgid bits to the kernel's
// numbers.
func unixMode(m fs.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	if m&fs.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	return mode
}

// resolveFlags confine every lookup to the new root: ".." stops at it and
// absolute symbolic links are taken relative to it, so no target can land
// outside it. Magic links (/proc/self/fd/N) are refused.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// open resolves name inside the new root.
func (a *applier) open(name string, flags int) (int, error) {
	return unix.Openat2(a.root, name, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: resolveFlags,
	})
}

// mkdirAll returns an O_PATH fd of the directory name inside the new root,
// creating it and its missing parents with mode 0755.
func (a *applier) mkdirAll(name string) (int, error) {
	fd, err := a.open(name, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) || name == "/" {
		return fd, err
	}
	parent, err := a.mkdirAll(path.Dir(name))
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(parent, path.Base(name), 0o755)
	unix.Close(parent)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return a.open(name, unix.O_PATH|unix.O_DIRECTORY)
}

// attach moves the detached mount fd onto target, creating the target as a
// directory or an empty file first when it is missing.
func (a *applier) attach(fd int, target string, dir bool, op string) error {
	var tfd int
	var err error
	if dir {
		tfd, err = a.mkdirAll(target)
	} else {
		tfd, err = a.open(target, unix.O_PATH)
		if errors.Is(err, unix.ENOENT) {
			tfd, err = a.createFile(target, 0o444)
		}
	}
	if err != nil {
		return &Error{op, target, err}
	}
	defer unix.Close(tfd)
	err = unix.MoveMount(fd, "", tfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return &Error{op, target, err}
	}
	return nil
}

// createFile creates an empty file inside the new root and returns an O_PATH
// fd of it.
func (a *applier) createFile(name string, mode uint32) (int, error) {
	parent, err := a.mkdirAll(path.Dir(name))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	fd, err := unix.Openat(parent, path.Base(name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return -1, err
	}
	unix.Close(fd)
	return a.open(name, unix.O_PATH)
}

func (a *applier) writeFile(m Mount) error {
	parent, err := a.mkdirAll(path.Dir(m.Target))
	if err != nil {
		return &Error{"write", m.Target, err}
	}
	defer unix.Close(parent)
	fd, err := unix.Openat(parent, path.Base(m.Target), unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &Error{"write", m.Target, err}
	}
	defer unix.Close(fd)
	for data := m.Data; len(data) > 0; {
		n, err := unix.Write(fd, data)
		if err != nil {
			return &Error{"write", m.Target, err}
		}
		data = data[n:]
	}
	return chmodOwn(fd, m, "write")
}

// chmodOwn gives the file open at fd the mode and owner of m.
func chmodOwn(fd int, m Mount, op string) error {
	if err := unix.Fchmod(fd, unixMode(m.Mode)); err != nil {
		return &Error{op, m.Target, err}
	}
	if m.UID != 0 || m.GID != 0 {
		if err := unix.Fchown(fd, m.UID, m.GID); err != nil {
			return &Error{op, m.Target, err}
		}
	}
	return nil
}

// mask covers a file with the host's /dev/null and a directory with an
// empty read-only tmpfs.
func (a *applier) mask(target string) error {
	tfd, err := a.open(target, unix.O_PATH|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &Error{"mask", target, err}
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstat(tfd, &st); err != nil {
		return &Error{"mask", target, err}
	}
	var fd int
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		fd, err = newTmpfs(4096, 1, 0o555, 0, 0, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOEXEC)
	} else {
		fd, err = cloneTree(a.devNull, "", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_RDONLY)
	}
	if err != nil {
		return &Error{"mask", target, err}
	}
	a.keep(fd)
	if err := unix.MoveMount(fd, "", tfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &Error{"mask", target, err}
	}
	return nil
}

// readOnly binds target onto itself read-only, recursively.
func (a *applier) readOnly(target string) error {
	tfd, err := a.open(target, unix.O_PATH|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &Error{"readonly", target, err}
	}
	defer unix.Close(tfd)
	fd, err := cloneTree(tfd, "", unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return &Error{"readonly", target, err}
	}
	a.keep(fd)
	if err := unix.MoveMount(fd, "", tfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &Error{"readonly", target, err}
	}
	return nil
}

// seal makes the tmpfs root and the tmpfs entries marked ReadOnly
// read-only, now that everything has been placed in them.
func (a *applier) seal() error {
	for _, fd := range a.sealRO {
		err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
		if err != nil {
			return &Error{"remount-ro", "", err}
		}
	}
	return nil
}

// pivot makes the new root the process's root and detaches the old one.
// Where / cannot be pivoted (an initramfs), it falls back to chroot, which
// leaves the old root mounted underneath but out of reach of a process
// without CAP_SYS_CHROOT.
func (a *applier) pivot() error {
	if err := unix.Fchdir(a.root); err != nil {
		return &Error{"chdir", "/", err}
	}
	err := unix.PivotRoot(".", ".")
	if errors.Is(err, unix.EINVAL) {
		if err := unix.Chroot("."); err != nil {
			return &Error{"chroot", "/", err}
		}
		return chdirRoot()
	}
	if err != nil {
		return &Error{"pivot_root", "/", err}
	}
	// The old root now sits on top of the new one; detach it.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &Error{"umount-old-root", "/", err}
	}
	return chdirRoot()
}

// propagateLater notes that the mount fd of entry m gets m's propagation
// once the root is in place.
func (a *applier) propagateLater(fd int, m Mount) {
	if !m.Propagation.private() {
		a.props = append(a.props, propMount{fd, m.Target, m.Propagation})
	}
}

// propagate sets the propagation of the root and of the entries that ask
// for one. It runs last: pivot_root refuses a shared new root (EINVAL), and
// a mount attached beneath a shared one would become shared too. Every
// mount here was made private before (cloneTree, or new), so a shared one
// gets a new peer group, inside the sandbox only.
func (a *applier) propagate() error {
	if p := a.plan.Root.Propagation; !p.private() {
		if err := setPropagation(a.root, p); err != nil {
			return &Error{"propagation", "/", err}
		}
	}
	for _, pm := range a.props {
		if err := setPropagation(pm.fd, pm.prop); err != nil {
			return &Error{"propagation", pm.target, err}
		}
	}
	return nil
}

// propagationFlag is the mount_setattr propagation of p.
func propagationFlag(p Propagation) uint64 {
	switch p {
	case Shared:
		return unix.MS_SHARED
	case Unbindable:
		return unix.MS_UNBINDABLE
	}
	return unix.MS_PRIVATE
}

// setPropagation sets the propagation of the mount fd alone.
func setPropagation(fd int, p Propagation) error {
	return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Propagation: propagationFlag(p)})
}

func chdirRoot() error {
	if err := unix.Chdir("/"); err != nil {
		return &Error{"chdir", "/", err}
	}
	return nil
}

// devptsOptions are the mount options of the Devpts m: a new instance with
// its own ptmx, which anyone may open, and at most m.Inodes ptys.
func devptsOptions(m Mount) [][2]string {
	opts := [][2]string{{"newinstance", ""}, {"ptmxmode", "0666"}, {"mode", "0620"}}
	if m.Inodes > 0 {
		opts = append(opts, [2]string{"max", strconv.FormatInt(m.Inodes, 10)})
	}
	return opts
}
