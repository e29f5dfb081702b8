//go:build linux

package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The names OCI layers use for deletions: ".wh.NAME" deletes NAME of the
// layers below, and a directory holding ".wh..wh..opq" hides everything the
// layers below hold in it.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// overlayOpaqueXattr marks an opaque directory for an overlay mounted with
// "userxattr", as the sandbox mounts it (inside its user namespace).
const overlayOpaqueXattr = "user.overlay.opaque"

// UnpackStats counts what an unpack did and what it left out on purpose.
type UnpackStats struct {
	// Entries is the number of tar entries read.
	Entries int
	// Bytes is the size of the regular files' contents written.
	Bytes int64
	// Whiteouts and Opaque count the deletions converted to overlay form.
	Whiteouts, Opaque int
	// Devices lists the character and block devices skipped: a sandbox gets
	// its own minimal /dev, and a device node in a layer is never created.
	Devices []string
	// Dropped counts what else was left out: set-user-id and set-group-id
	// bits of a rootless unpack, extended attributes other than user.*, and
	// entry types that are not files, directories, links or fifos.
	Dropped int
}

// unpacker applies one layer's tar stream to an empty directory in
// overlayfs format. Every path is resolved by the kernel inside the
// directory (openat2 with RESOLVE_IN_ROOT): a symbolic link in the layer,
// absolute or full of "..", resolves as it would inside the image and never
// to the host, and the final component of every entry is created or removed
// relative to its parent's descriptor without following it.
type unpacker struct {
	root     int  // descriptor of the layer directory
	rootless bool // the caller is not host root: keep no ids, no set-id bits

	// opaque holds the directories of this layer marked opaque, whiteouts
	// the plain whiteouts made, so that the two are not mixed (overlayfs
	// lists a whiteout inside an opaque directory of the same layer).
	opaque    map[string]bool
	whiteouts map[string]bool
	// dirs are the directories made, with their final mode and times, set
	// at the end (deepest first) so that a read-only directory can still be
	// filled by the entries after it.
	dirs map[string]*tar.Header

	// last caches the descriptor of the last parent directory.
	lastDir string
	lastFD  int

	stats UnpackStats
}

func newUnpacker(dir string, rootless bool) (*unpacker, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &unpacker{
		root: fd, rootless: rootless, lastFD: -1,
		opaque: map[string]bool{}, whiteouts: map[string]bool{}, dirs: map[string]*tar.Header{},
	}, nil
}

func (u *unpacker) close() {
	u.forget()
	unix.Close(u.root)
}

// forget drops the cached parent: called whenever an entry is removed, since
// the cached directory may have been the one removed or replaced.
func (u *unpacker) forget() {
	if u.lastFD >= 0 {
		unix.Close(u.lastFD)
	}
	u.lastFD, u.lastDir = -1, ""
}

// apply reads the whole tar stream.
func (u *unpacker) apply(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		u.stats.Entries++
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	return u.finishDirs()
}

// clean turns a tar name into a path relative to the layer root, "" for the
// root itself. Leading slashes and ".." cannot climb above the root.
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	name := clean(hdr.Name)
	if name == "" {
		return nil // the layer root: always 0755, owned by the unpacker
	}
	dir, base := path.Dir(name), path.Base(name)
	if dir == "." {
		dir = ""
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(dir, base)
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock:
		u.stats.Devices = append(u.stats.Devices, name)
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	default:
		u.stats.Dropped++
		return nil
	}
	pfd, err := u.parent(dir)
	if err != nil {
		return err
	}
	// What was there is replaced, except a directory by a directory.
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			u.dirs[name] = hdr
			return u.owner(pfd, base, hdr)
		}
		if err := u.removeAt(pfd, base); err != nil {
			return err
		}
		delete(u.whiteouts, name)
		if pfd, err = u.parent(dir); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return err
		}
		u.dirs[name] = hdr
	case tar.TypeReg, tar.TypeRegA:
		if err := u.file(pfd, base, hdr, r); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
	case tar.TypeLink:
		return u.hardlink(pfd, base, hdr)
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
	}
	if err := u.owner(pfd, base, hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeDir {
		if hdr.Typeflag != tar.TypeSymlink {
			if err := unix.Fchmodat(pfd, base, u.mode(hdr), 0); err != nil {
				return err
			}
		}
		return u.times(pfd, base, hdr)
	}
	return nil
}

// parent opens (and makes, as 0700 directories, when missing) the directory
// dir of the layer, resolved inside the layer root.
func (u *unpacker) parent(dir string) (int, error) {
	if u.lastFD >= 0 && u.lastDir == dir {
		return u.lastFD, nil
	}
	fd, err := u.openDir(dir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		if err = u.mkdirAll(dir); err == nil {
			fd, err = u.openDir(dir)
		}
	}
	if err != nil {
		return -1, fmt.Errorf("open directory %q in the layer: %w", dir, err)
	}
	u.forget()
	u.lastFD, u.lastDir = fd, dir
	return fd, nil
}

func (u *unpacker) openDir(dir string) (int, error) {
	if dir == "" {
		dir = "."
	}
	for {
		fd, err := unix.Openat2(u.root, dir, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// mkdirAll makes the missing directories of dir one by one, each relative
// to its parent's descriptor. A component that exists and is no directory
// (a file, a whiteout) is replaced, as tar does.
func (u *unpacker) mkdirAll(dir string) error {
	parts := strings.Split(dir, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		fd, err := u.openDir(sub)
		if err == nil {
			unix.Close(fd)
			continue
		}
		notDir := errors.Is(err, unix.ENOTDIR)
		if !errors.Is(err, unix.ENOENT) && !notDir {
			return err
		}
		pfd, err := u.openDir(strings.Join(parts[:i], "/"))
		if err != nil {
			return err
		}
		if notDir {
			err = u.removeAt(pfd, parts[i])
		}
		if err == nil {
			if err = unix.Mkdirat(pfd, parts[i], 0o700); errors.Is(err, unix.EEXIST) {
				u.forget()
				if err = u.removeAt(pfd, parts[i]); err == nil {
					err = unix.Mkdirat(pfd, parts[i], 0o700)
				}
			}
		}
		unix.Close(pfd)
		if err != nil {
			return err
		}
		// A parent made implicitly keeps the usual directory mode.
		u.dirs[sub] = &tar.Header{Name: sub, Typeflag: tar.TypeDir, Mode: 0o755, Uid: -1}
	}
	return nil
}

func (u *unpacker) file(pfd int, base string, hdr *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	n, err := io.Copy(f, r)
	u.stats.Bytes += n
	if err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if !strings.HasPrefix(attr, "user.") || strings.HasPrefix(attr, "user.overlay.") {
			u.stats.Dropped++
			continue
		}
		if err := unix.Fsetxattr(fd, attr, []byte(v), 0); err != nil {
			u.stats.Dropped++
		}
	}
	return f.Close()
}

// hardlink links base to an earlier entry of the same layer. The target is
// resolved inside the layer root, which holds nothing but this layer.
func (u *unpacker) hardlink(pfd int, base string, hdr *tar.Header) error {
	target := clean(hdr.Linkname)
	if target == "" {
		return fmt.Errorf("hard link to the layer root")
	}
	tdir, tbase := path.Dir(target), path.Base(target)
	if tdir == "." {
		tdir = ""
	}
	tfd, err := u.openDir(tdir)
	if err != nil {
		return fmt.Errorf("hard link target %q is not in this layer: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link target %q is not in this layer: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR || (st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0) {
		return fmt.Errorf("hard link target %q is a directory or a whiteout", hdr.Linkname)
	}
	return unix.Linkat(tfd, tbase, pfd, base, 0)
}

// whiteout converts ".wh.NAME" into a 0:0 character device NAME, and
// ".wh..wh..opq" into the opaque attribute of its directory.
func (u *unpacker) whiteout(dir, base string) error {
	pfd, err := u.parent(dir)
	if err != nil {
		return err
	}
	if base == opaqueMarker {
		if err := unix.Fsetxattr(pfd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %q opaque: %w", dir, err)
		}
		u.stats.Opaque++
		u.opaque[dir] = true
		// Whiteouts made earlier inside it are now redundant, and would
		// show up in listings of the opaque directory.
		for w := range u.whiteouts {
			if dir == "" || strings.HasPrefix(w, dir+"/") {
				if err := u.removeEntry(w); err != nil {
					return err
				}
				delete(u.whiteouts, w)
			}
		}
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, whiteoutPrefix) {
		return fmt.Errorf("bad whiteout name %q", base)
	}
	full := path.Join(dir, name)
	if err := u.removeAt(pfd, name); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if pfd, err = u.parent(dir); err != nil {
		return err
	}
	for d := dir; ; d = path.Dir(d) {
		if d == "." {
			d = ""
		}
		if u.opaque[d] {
			return nil // the opaque directory hides it already
		}
		if d == "" {
			break
		}
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR|0o600, 0); err != nil {
		return fmt.Errorf("whiteout %q: %w", full, err)
	}
	u.whiteouts[full] = true
	u.stats.Whiteouts++
	return nil
}

// removeEntry removes a path of the layer, resolved inside the root.
func (u *unpacker) removeEntry(rel string) error {
	dir, base := path.Dir(rel), path.Base(rel)
	if dir == "." {
		dir = ""
	}
	pfd, err := u.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return u.removeAt(pfd, base)
}

// removeAt removes base in the directory pfd, and all it holds.
func (u *unpacker) removeAt(pfd int, base string) error {
	err := removeAllAt(pfd, base)
	u.forget() // pfd may be the cached descriptor: the caller opens it again
	return err
}

func removeAllAt(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return err
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err == nil || !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// An unreadable directory of the caller's own is made readable first.
	_ = unix.Fchmod(fd, 0o700)
	d := os.NewFile(uintptr(fd), base)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
}

// mode is the permission bits an entry keeps: set-user-id and set-group-id
// only for host root, whose store no one else can enter.
func (u *unpacker) mode(hdr *tar.Header) uint32 {
	m := uint32(hdr.Mode) & 0o7777
	if u.rootless && m&(unix.S_ISUID|unix.S_ISGID) != 0 {
		m &^= unix.S_ISUID | unix.S_ISGID
		u.stats.Dropped++
	}
	return m
}

// owner gives the entry the image's ids, for host root; an ordinary user's
// unpack keeps the caller's own.
func (u *unpacker) owner(pfd int, base string, hdr *tar.Header) error {
	if u.rootless || hdr.Uid < 0 {
		return nil
	}
	return unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
}

func (u *unpacker) times(pfd int, base string, hdr *tar.Header) error {
	if hdr.ModTime.IsZero() {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if !hdr.AccessTime.IsZero() {
		ts[0] = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// finishDirs gives the directories their modes and times, the deepest first
// (a child's time would otherwise change its parent's).
func (u *unpacker) finishDirs() error {
	u.forget()
	names := make([]string, 0, len(u.dirs))
	for n := range u.dirs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] > names[j] })
	for _, n := range names {
		hdr := u.dirs[n]
		dir, base := path.Dir(n), path.Base(n)
		if dir == "." {
			dir = ""
		}
		pfd, err := u.openDir(dir)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue // removed by a later entry
		}
		if err != nil {
			return err
		}
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err = unix.Fchmodat(pfd, base, u.mode(hdr), 0); err == nil {
				err = u.times(pfd, base, hdr)
			}
		} else if errors.Is(err, unix.ENOENT) {
			err = nil
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("directory %q: %w", n, err)
		}
	}
	return nil
}
