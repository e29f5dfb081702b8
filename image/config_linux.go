//go:build linux

package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH an image without one gets.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Runtime is what an image's configuration asks of the process that runs
// it, in the terms of sandbox.Config.
type Runtime struct {
	// Layers are the unpacked layer directories, lowest first
	// (sandbox.Overlay's Layers).
	Layers []string
	// Args is the image's Entrypoint followed by its Cmd, when the caller
	// asked for the default command; else nil.
	Args []string
	// Env is the image's environment, with DefaultPath added when it sets
	// no PATH.
	Env []string
	// Dir is the image's working directory, "/" when it names none.
	Dir string
	// UID and GID are the image's user, resolved through its own
	// /etc/passwd and /etc/group; Root is set for uid 0 (sandbox.Config
	// then wants RunAsRoot and zero ids).
	UID, GID int
	Root     bool
	// ExposedPorts are the ports the image says it listens on. They are
	// documentation only: a sandbox has no network unless asked, and
	// nothing is published.
	ExposedPorts []string
}

// Runtime resolves img's configuration against its unpacked layers (from
// Unpack). The default command (Entrypoint and Cmd) is returned only when
// defaultCommand is set: an image's command runs only when the caller opts
// in.
func (img *Image) Runtime(layers []string, defaultCommand bool) (*Runtime, error) {
	c := img.Config.Config
	rt := &Runtime{Layers: layers, Dir: c.WorkingDir}
	if rt.Dir == "" {
		rt.Dir = "/"
	}
	if !path.IsAbs(rt.Dir) {
		return nil, fmt.Errorf("image: %s: WorkingDir %q is not absolute", img.Name, c.WorkingDir)
	}
	hasPath := false
	for _, e := range c.Env {
		if strings.HasPrefix(e, "PATH=") {
			hasPath = true
		}
		rt.Env = append(rt.Env, e)
	}
	if !hasPath {
		rt.Env = append([]string{DefaultPath}, rt.Env...)
	}
	if defaultCommand {
		rt.Args = append(append([]string{}, c.Entrypoint...), c.Cmd...)
		if len(rt.Args) == 0 {
			return nil, fmt.Errorf("image: %s has no Entrypoint or Cmd to run", img.Name)
		}
	}
	for p := range c.ExposedPorts {
		rt.ExposedPorts = append(rt.ExposedPorts, p)
	}
	uid, gid, err := resolveUser(layers, c.User)
	if err != nil {
		return nil, fmt.Errorf("image: %s: User %q: %w", img.Name, c.User, err)
	}
	rt.UID, rt.GID, rt.Root = uid, gid, uid == 0
	if rt.Root && gid != 0 {
		return nil, fmt.Errorf("image: %s: User %q: root with group %d cannot be expressed: a sandbox's root has group 0", img.Name, c.User, gid)
	}
	return rt, nil
}

// resolveUser turns an image's User ("", "name", "uid", "name:group",
// "uid:gid") into ids, looking names up in the image's /etc/passwd and
// /etc/group. Empty is root, as in docker.
func resolveUser(layers []string, user string) (int, int, error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(u); err == nil {
		uid = n
	}
	passwd, err := readImageFile(layers, "etc/passwd")
	if err != nil && (uid < 0 || !errors.Is(err, os.ErrNotExist)) {
		return 0, 0, err
	}
	for _, f := range splitDB(passwd) {
		if len(f) < 4 {
			continue
		}
		if f[0] == u || (uid >= 0 && f[2] == u) {
			id, err1 := strconv.Atoi(f[2])
			pg, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil {
				return 0, 0, fmt.Errorf("bad /etc/passwd entry for %q", f[0])
			}
			uid, gid = id, pg
			break
		}
	}
	if uid < 0 {
		return 0, 0, fmt.Errorf("no user %q in the image's /etc/passwd", u)
	}
	if hasGroup {
		gid = -1
		if n, err := strconv.Atoi(g); err == nil {
			gid = n
		} else {
			group, err := readImageFile(layers, "etc/group")
			if err != nil {
				return 0, 0, err
			}
			for _, f := range splitDB(group) {
				if len(f) >= 3 && f[0] == g {
					if gid, err = strconv.Atoi(f[2]); err != nil {
						return 0, 0, fmt.Errorf("bad /etc/group entry for %q", g)
					}
					break
				}
			}
			if gid < 0 {
				return 0, 0, fmt.Errorf("no group %q in the image's /etc/group", g)
			}
		}
	}
	if gid < 0 {
		gid = 0
	}
	if uid < 0 || gid < 0 {
		return 0, 0, errors.New("negative id")
	}
	return uid, gid, nil
}

func splitDB(b []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// maxDBSize bounds what readImageFile reads.
const maxDBSize = 1 << 20

// readImageFile reads a small file of the image as the overlay would show
// it: from the highest layer that has it, unless a higher layer deletes it
// (a whiteout of it or of a parent, an opaque parent, a parent that is no
// directory). The file must be a plain file: a symbolic link is refused
// rather than followed, and nothing outside the layer directories is ever
// opened.
func readImageFile(layers []string, rel string) ([]byte, error) {
	parts := strings.Split(rel, "/")
	for i := len(layers) - 1; i >= 0; i-- {
		root, err := unix.Open(layers[i], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		data, stop, err := readInLayer(root, parts)
		unix.Close(root)
		if err != nil || data != nil || stop {
			if data == nil && err == nil {
				err = os.ErrNotExist
			}
			return data, err
		}
	}
	return nil, fmt.Errorf("/%s: %w", rel, os.ErrNotExist)
}

// readInLayer looks for the file in one layer; stop reports that the layer
// hides it from the layers below.
func readInLayer(root int, parts []string) ([]byte, bool, error) {
	opaque := false
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		var st unix.Stat_t
		if err := unix.Fstatat(root, sub, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, opaque, nil
			}
			return nil, false, err
		}
		last := i == len(parts)-1
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0:
			return nil, true, nil // a whiteout
		case last && st.Mode&unix.S_IFMT != unix.S_IFREG:
			return nil, true, fmt.Errorf("/%s is not a plain file", sub)
		case !last && st.Mode&unix.S_IFMT != unix.S_IFDIR:
			return nil, true, nil
		}
		if !last && isOpaque(root, sub) {
			opaque = true // it hides what the layers below hold in it
		}
	}
	fd, err := unix.Openat2(root, strings.Join(parts, "/"), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return nil, false, err
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDBSize+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > maxDBSize {
		return nil, false, fmt.Errorf("/%s is larger than %d bytes", strings.Join(parts, "/"), maxDBSize)
	}
	return b, true, nil
}

func isOpaque(root int, sub string) bool {
	fd, err := unix.Openat2(root, sub, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	n, err := unix.Fgetxattr(fd, overlayOpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}
