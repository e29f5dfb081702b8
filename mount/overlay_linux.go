package mount

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The overlay root, built the same way by Apply (here) and by Compile:
//
//  1. a small staging tmpfs with one directory per lower layer ("0", "1"
//     ...) and one for the upper layer ("u") is attached over "/" of the
//     applying process's mount namespace: overlayfs before Linux 6.15
//     takes only layers that are mounted in the mounter's namespace, and a
//     layer a parent made (an idmapped clone) is a detached mount;
//  2. each layer's mount is attached on its directory, and the upper
//     layer's (a clone of Overlay.Upper, the parent's mount, or a fresh
//     tmpfs holding "upper" and "work") on "u";
//  3. overlayfs is created with paths relative to the staging tmpfs, the
//     working directory (lowerdir "N-1:...:0", upperdir "u/upper",
//     workdir "u/work", userxattr), and mounted detached;
//  4. the staging tmpfs is detached again, with the layers beneath it:
//     overlayfs holds private clones of them.

// overlayLowerDir is the lowerdir option for n layers staged as "0" (the
// lowest) to "n-1": overlayfs lists the uppermost first.
func overlayLowerDir(n int) string {
	names := make([]string, n)
	for i := range n {
		names[i] = strconv.Itoa(n - 1 - i)
	}
	return strings.Join(names, ":")
}

// overlayOptions are the options of the overlay over n staged layers.
func overlayOptions(n int) [][2]string {
	return [][2]string{
		{"lowerdir", overlayLowerDir(n)},
		{"upperdir", "u/upper"},
		{"workdir", "u/work"},
		{"userxattr", ""},
	}
}

// Staging and upper tmpfs sizes.
const (
	stagingSize   = 64 << 10
	stagingInodes = MaxLayers + 8
)

// Attributes of the staged mounts and of the overlay itself.
const (
	lowerAttrs   = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	upperAttrs   = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	overlayAttrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
)

// makeOverlay returns a detached overlay mount made as described above.
func (a *applier) makeOverlay(o *Overlay) (int, error) {
	stg, err := newTmpfs(stagingSize, stagingInodes, 0o700, 0, 0, 0)
	if err != nil {
		return -1, &Error{"overlay-staging", "/", err}
	}
	a.keep(stg)
	for i := range o.Lower {
		if err := unix.Mkdirat(stg, strconv.Itoa(i), 0o700); err != nil {
			return -1, &Error{"overlay-staging", "/", err}
		}
	}
	if err := unix.Mkdirat(stg, "u", 0o700); err != nil {
		return -1, &Error{"overlay-staging", "/", err}
	}
	if err := unix.MoveMount(stg, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return -1, &Error{"overlay-staging", "/", err}
	}
	for i, l := range o.Lower {
		var fd int
		if len(o.FDs) > 0 {
			fd = a.keep(o.FDs[i])
		} else if fd, err = cloneTree(unix.AT_FDCWD, l, lowerAttrs); err != nil {
			return -1, &Error{"overlay-lower", l, err}
		} else {
			a.keep(fd)
		}
		if err := unix.MoveMount(fd, "", stg, strconv.Itoa(i), unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return -1, &Error{"overlay-lower", l, err}
		}
	}
	var up int
	switch {
	case len(o.FDs) > 0:
		up = a.keep(o.FDs[len(o.Lower)])
	case o.Upper != "":
		if up, err = cloneTree(unix.AT_FDCWD, o.Upper, upperAttrs); err != nil {
			return -1, &Error{"overlay-upper", o.Upper, err}
		}
		a.keep(up)
	default:
		if up, err = newTmpfs(o.UpperSize, 0, 0o755, 0, 0, 0); err != nil {
			return -1, &Error{"overlay-upper", "tmpfs", err}
		}
		a.keep(up)
		for _, d := range []string{"upper", "work"} {
			if err := unix.Mkdirat(up, d, 0o755); err != nil {
				return -1, &Error{"overlay-upper", d, err}
			}
		}
		if o.SendFD > 0 {
			if err := sendFD(o.SendFD, up); err != nil {
				return -1, &Error{"overlay-upper", "send", err}
			}
		}
	}
	if err := unix.MoveMount(up, "", stg, "u", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return -1, &Error{"overlay-upper", o.Upper, err}
	}
	if err := unix.Fchdir(stg); err != nil {
		return -1, &Error{"overlay", "/", err}
	}
	fd, err := newMount("overlay", overlayOptions(len(o.Lower)), overlayAttrs)
	if err != nil {
		return -1, &Error{"overlay", "/", err}
	}
	// The pivot sets the working directory anew.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		unix.Close(fd)
		return -1, &Error{"overlay-staging", "/", err}
	}
	return fd, nil
}

// sendFD sends fd on the socket sock with one byte.
func sendFD(sock, fd int) error {
	return unix.Sendmsg(sock, []byte{'u'}, unix.UnixRights(fd), nil, unix.MSG_NOSIGNAL)
}

// CloneLayer returns a detached, read-only clone of the host directory
// dir for an Overlay's FDs, idmapped through the user namespace open as
// userns: a file dir holds as id N on disk shows as the id that userns
// maps N to, so that inside a sandbox whose user namespace maps ids as
// userns does, it shows as N. A negative userns clones without an id map.
// Symbolic links in dir are followed as CloneSource follows them. Linux
// 5.12, and a file system that supports idmapped mounts.
func CloneLayer(dir string, userns int) (*os.File, error) {
	return cloneMapped(dir, lowerAttrs, userns, "overlay-lower")
}

// CloneUpper is CloneLayer for the writable directory that holds an
// Overlay's "upper" and "work" directories: a file the sandbox makes there
// is stored with the id it has inside the sandbox.
func CloneUpper(dir string, userns int) (*os.File, error) {
	return cloneMapped(dir, upperAttrs, userns, "overlay-upper")
}

func cloneMapped(dir string, attrs uint64, userns int, op string) (*os.File, error) {
	fd, err := openSource(dir)
	if err != nil {
		return nil, &Error{op, dir, err}
	}
	defer unix.Close(fd)
	c, err := idmapClone(fd, attrs, userns)
	if err != nil {
		return nil, &Error{op, dir, err}
	}
	return os.NewFile(uintptr(c), dir), nil
}

// idmapClone clones the tree at fd, detached and private, with attrs and
// the id map of userns (none when negative).
func idmapClone(fd int, attrs uint64, userns int) (int, error) {
	c, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, err
	}
	a := unix.MountAttr{Attr_set: attrs, Propagation: unix.MS_PRIVATE}
	if userns >= 0 {
		a.Attr_set |= unix.MOUNT_ATTR_IDMAP
		a.Userns_fd = uint64(userns)
	}
	if err := unix.MountSetattr(c, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &a); err != nil {
		unix.Close(c)
		return -1, err
	}
	return c, nil
}

// NewUpperTmpfs returns a detached tmpfs of size bytes holding the empty
// directories "upper" and "work", owned by the caller, for an Overlay's
// upper layer that the caller holds (so that it can read the layer once
// the sandbox is gone) and hands to the sandbox through MapUpper.
func NewUpperTmpfs(size int64) (*os.File, error) {
	fd, err := newTmpfs(size, 0, 0o755, 0, 0, 0)
	if err != nil {
		return nil, &Error{"overlay-upper", "tmpfs", err}
	}
	for _, d := range []string{"upper", "work"} {
		if err := unix.Mkdirat(fd, d, 0o755); err != nil {
			unix.Close(fd)
			return nil, &Error{"overlay-upper", d, err}
		}
	}
	return os.NewFile(uintptr(fd), "overlay-upper"), nil
}

// MapUpper returns a detached clone of the mount f (from NewUpperTmpfs)
// idmapped as CloneUpper's. Linux 6.3 for a tmpfs.
func MapUpper(f *os.File, userns int) (*os.File, error) {
	c, err := idmapClone(int(f.Fd()), upperAttrs, userns)
	if err != nil {
		return nil, &Error{"overlay-upper", "tmpfs", err}
	}
	return os.NewFile(uintptr(c), "overlay-upper"), nil
}
