//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/mount"
)

// binds says which entries of a plan are the Config's own Mounts, and as
// which host ids the sandbox's user writes: what the idmapped mounts of
// writable binds map their owner onto.
type binds struct {
	first    int // the index in the plan of Mounts[0]; -1: no idmaps
	uid, gid uint32
	// root, for RootIDMap, is RootDir: it and the Binds from inside it
	// are idmapped with the sandbox's own maps, id's (see cloneRoot).
	root string
	// id are the sandbox's ids: those of its device nodes' owners.
	id identity
}

// userBinds returns the binds of plan p, built from c (with its
// defaults) for a sandbox whose ids are id. Only host root idmaps: an
// ordinary user's sandbox with its own ids writes as the caller already,
// and one with subordinate ids may not idmap the host's file systems.
func (c *Config) userBinds(p *mount.Plan, id identity) binds {
	if os.Geteuid() != 0 {
		return binds{first: -1}
	}
	uid, gid := id.hostIDs(c.UID, c.GID)
	b := binds{first: len(p.Mounts) - len(c.Mounts), uid: uint32(uid), gid: uint32(gid), id: id}
	if c.RootIDMap {
		b.root = c.RootDir
	}
	return b
}

// inRoot reports whether m, entry i of the plan, is a Bind of the
// Config's from inside a RootIDMap root, cloned as a part of that root
// (by cloneInRoot): one with neither Owner nor NoIDMap, of no device.
func (b binds) inRoot(i int, m *mount.Mount) bool {
	if b.root == "" || i < b.first || m.Owner != nil || m.NoIDMap || m.Device {
		return false
	}
	return m.Source == b.root || b.root == "/" || strings.HasPrefix(m.Source, b.root+"/")
}

// rootNS returns a user namespace with the sandbox's own maps for the
// idmapped clones of a RootIDMap root, or -1 without RootIDMap.
func (b binds) rootNS() (int, error) {
	if b.root == "" {
		return -1, nil
	}
	return newUserNS(b.id)
}

// cloneRoot clones the root directory r: idmapped through the namespace
// userns for RootIDMap (userns >= 0), so that its files keep their
// on-disk ids inside the sandbox.
func cloneRoot(r mount.Root, userns int) (*os.File, error) {
	if userns < 0 {
		return mount.CloneRoot(r)
	}
	f, err := mount.CloneRootMapped(r, userns)
	return f, rootIDMapErr(err, "RootDir", r.Dir)
}

// cloneInRoot clones m, a Bind from inside a RootIDMap root (see inRoot),
// as cloneRoot clones the root: resolved within the root, idmapped alike.
func (b binds) cloneInRoot(i int, m *mount.Mount, userns int) (*os.File, error) {
	f, err := mount.CloneSourceIn(*m, b.root, userns)
	return f, rootIDMapErr(err, fmtIndex("Mounts", i-b.first), m.Source)
}

// rootIDMapErr turns an error of an idmapped clone for RootIDMap of the
// Config's field (the path dir) into a *FeatureError when the file
// system cannot be idmapped.
func rootIDMapErr(err error, field, dir string) error {
	var me *mount.Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &me):
		return setupErr("idmap", field+" "+dir, err)
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, ErrNotSupported):
		fs := "file system unknown"
		if fd, oerr := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0); oerr == nil {
			fs = fsName(fd)
			unix.Close(fd)
		}
		return &FeatureError{
			Feature: fmt.Sprintf("an idmapped mount of %s (%s, %s) for RootIDMap", field, dir, fs),
			Err:     fmt.Errorf("%w; unset RootIDMap to mount it with the sandbox's ids", err),
		}
	}
	return setupErr(me.Op, field+" "+me.Path, me.Err)
}

// idmap makes f, the detached clone of entry i of the plan, an idmapped
// mount when it is a writable bind of the Config's: the sandbox's user
// acts there as the bind's Owner, or as the owner of its source. A bind
// of a device node is never idmapped: its owner's rights over the host's
// node (chmod, say) are no one's to lend.
func (b binds) idmap(i int, m *mount.Mount, f *os.File) error {
	if b.first < 0 || i < b.first || !m.Writable || m.NoIDMap || m.Device {
		return nil
	}
	field := fmtIndex("Mounts", i-b.first)
	owner := m.Owner
	if owner == nil {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return setupErr("idmap", m.Source, err)
		}
		if st.Uid == 0 || st.Gid == 0 {
			// Mapped onto host root, the sandbox's user could leave
			// set-user-ID programs of root's, and links that root
			// trusts (see mount.ErrUntrustedLink), for the host to
			// find: only a named Owner does that.
			return nil
		}
		owner = &mount.Owner{UID: st.Uid, GID: st.Gid}
	}
	err := mount.IDMapSource(f, b.uid, b.gid, *owner)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL) || errors.Is(err, ErrNotSupported):
		return &FeatureError{
			Feature: fmt.Sprintf("an idmapped mount of %s (%s, %s)", field, m.Source, fsName(int(f.Fd()))),
			Err:     fmt.Errorf("%w; set %s.NoIDMap to bind it as it is, writable only where the sandbox's host id may write", err, field),
		}
	}
	return setupErr("idmap", field+" "+m.Source, err)
}

// fsName names the file system of fd for an error message.
func fsName(fd int) string {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil {
		return "file system unknown"
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs, which Linux idmaps from 6.3, or devtmpfs, which it never does"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.SYSFS_MAGIC:
		return "sysfs"
	case unix.PROC_SUPER_MAGIC:
		return "proc"
	case unix.NFS_SUPER_MAGIC:
		return "nfs, which Linux does not idmap"
	case unix.FUSE_SUPER_MAGIC:
		return "fuse, which Linux idmaps from 6.12 where the server allows it"
	}
	return fmt.Sprintf("file system %#x", st.Type)
}
