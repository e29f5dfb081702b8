package mount

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUntrustedLink is wrapped by the error of CloneSource and CloneRoot
// for a path that leads through a symbolic link owned by neither root nor
// the caller.
var ErrUntrustedLink = errors.New("untrusted symbolic link")

// maxLinks is how many symbolic links openSource follows in one path, as
// the kernel's MAXSYMLINKS.
const maxLinks = 40

// openSource returns an O_PATH descriptor of the host path name, resolved
// one component at a time from the caller's root. A symbolic link on the
// way, the last component included, is followed only when root or the
// caller's effective uid owns it; any other makes it fail with an error
// that wraps ErrUntrustedLink and names the link.
//
// A privileged caller resolves bind sources with rights that the sandbox
// lacks. A link that someone else made, an ordinary user of the host or a
// sandbox through a writable bind (whose ids are never host root), could
// otherwise turn a bind of a directory that person controls into a bind
// of any host path: the caller would lend them its rights. Links of the
// system's own, such as merged-/usr's /bin or /etc/alternatives, belong to
// root and are followed.
func openSource(name string) (int, error) {
	if !path.IsAbs(name) {
		return -1, fmt.Errorf("%s: not an absolute path", name)
	}
	euid := uint32(os.Geteuid())
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		unix.Close(fd)
		return -1, err
	}
	// walked is the path resolved so far, for errors only.
	walked, rest, links := "/", name, 0
	for {
		rest = strings.TrimLeft(rest, "/")
		if rest == "" {
			return fd, nil
		}
		comp := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			comp, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		if comp == "." {
			continue
		}
		next, err := unix.Openat(fd, comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", path.Join(walked, comp), err))
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			return fail(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			unix.Close(fd)
			fd, walked = next, path.Join(walked, comp)
			continue
		}
		link := path.Join(walked, comp)
		if st.Uid != 0 && st.Uid != euid {
			unix.Close(next)
			return fail(fmt.Errorf("%s is owned by uid %d, neither root nor the caller: %w", link, st.Uid, ErrUntrustedLink))
		}
		if links++; links > maxLinks {
			unix.Close(next)
			return fail(fmt.Errorf("%s: %w", link, unix.ELOOP))
		}
		// The link read through the descriptor is the one whose owner was
		// checked, even if it has been replaced since.
		target, err := readlinkFD(next)
		unix.Close(next)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", link, err))
		}
		if path.IsAbs(target) {
			root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fail(err)
			}
			unix.Close(fd)
			fd, walked = root, "/"
		}
		rest = target + "/" + rest
	}
}

// readlinkFD returns the text of the symbolic link open as O_PATH in fd.
func readlinkFD(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// cloneSource clones the tree at the host path name, resolved by
// openSource, with attrs.
func cloneSource(name string, attrs uint64) (int, error) {
	fd, err := openSource(name)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	return cloneTree(fd, "", attrs)
}

// CloneSourceIn is CloneSource for a Bind entry m whose Source lies in the
// host directory root, cloned as CloneRootMapped clones root: the path
// below root is resolved as if root were "/" (RESOLVE_IN_ROOT), so that no
// symbolic link in it leads out of root, whoever owns the link. It is for
// a root that a sandbox writes as root through an idmapped mount, where a
// link owned by root may be the sandbox's. Linux 5.12.
func CloneSourceIn(m Mount, root string, userns int) (*os.File, error) {
	rel, ok := strings.CutPrefix(m.Source, root)
	if !ok || rel != "" && rel[0] != '/' && root != "/" {
		return nil, &Error{"bind", m.Source, fmt.Errorf("not in %s", root)}
	}
	fd, err := openSource(root)
	if err != nil {
		return nil, &Error{"bind", m.Source, err}
	}
	defer func() { unix.Close(fd) }()
	if rel = strings.TrimLeft(rel, "/"); rel != "" {
		in, err := unix.Openat2(fd, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			return nil, &Error{"bind", m.Source, err}
		}
		unix.Close(fd)
		fd = in
	}
	c, err := idmapClone(fd, bindAttrs(m), userns)
	if err != nil {
		return nil, &Error{"idmap", m.Source, err}
	}
	return os.NewFile(uintptr(c), m.Source), nil
}
