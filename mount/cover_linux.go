package mount

import (
	"errors"

	"golang.org/x/sys/unix"
)

// cover places a read-only file holding m.Data over the regular file at
// m.Target, when there is one.
//
// The file is written on a small tmpfs of its own and bound from there.
// Before Linux 6.15 the kernel clones a file out of a mount only when that
// mount is attached in the caller's namespace, so the tmpfs is attached
// on top of the new root for as long as the clone takes, and detached
// again right after.
func (a *applier) cover(m Mount) (err error) {
	fail := func(err error) error { return &Error{"cover", m.Target, err} }
	tfd, err := a.open(m.Target, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fail(err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstat(tfd, &st); err != nil {
		return fail(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fail(errors.New("not a regular file"))
	}

	scratch, err := newTmpfs(int64(len(m.Data))+4096, 2, 0o755, 0, 0, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(scratch)
	if err := writeAt(scratch, "f", m); err != nil {
		return fail(err)
	}
	cwd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(cwd)
	if err := unix.MoveMount(scratch, "", a.root, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fail(err)
	}
	clone, cloneErr := cloneTree(scratch, "f", unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	// Detach the tmpfs from the root again: from inside it, as it has no
	// path of its own.
	err = unix.Fchdir(scratch)
	if err == nil {
		err = unix.Unmount(".", unix.MNT_DETACH)
	}
	if cerr := unix.Fchdir(cwd); err == nil {
		err = cerr
	}
	if cloneErr != nil || err != nil {
		if clone >= 0 {
			unix.Close(clone)
		}
		return fail(errors.Join(cloneErr, err))
	}
	a.keep(clone)
	if err := unix.MoveMount(clone, "", tfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fail(err)
	}
	return nil
}

// writeAt creates the file name in the directory dirfd and writes m.Data
// to it with m's mode and owner.
func writeAt(dirfd int, name string, m Mount) error {
	fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for data := m.Data; len(data) > 0; {
		n, err := unix.Write(fd, data)
		if err != nil {
			return err
		}
		data = data[n:]
	}
	if err := unix.Fchmod(fd, unixMode(m.Mode)); err != nil {
		return err
	}
	if m.UID != 0 || m.GID != 0 {
		return unix.Fchown(fd, m.UID, m.GID)
	}
	return nil
}
