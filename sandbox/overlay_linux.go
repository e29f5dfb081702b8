//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/linux"
	"github.com/stockade/stockade/mount"
)

// overlayUpper is the owner's side of a sandbox's Overlay: the upper
// layer, made before the start and released at Close.
type overlayUpper struct {
	cfg  Overlay
	root bool // host root: the layers and the upper are idmapped by the owner
	// userns is a user namespace whose id maps are the sandbox's, for the
	// idmapped mounts (host root only), ours to close when ownNS.
	userns int
	ownNS  bool
	// dir is the sandbox's own directory under cfg.Dir, holding "upper"
	// and "work" ("" on tmpfs).
	dir string
	// hold is the upper layer's tmpfs mount, held by the owner: made by
	// the owner (host root), or sent by the sandbox (an ordinary user).
	hold *os.File
}

// upperTmpfsSend reports whether the sandbox makes the upper layer's
// tmpfs itself and sends it to the owner.
func (u *overlayUpper) upperTmpfsSend() bool { return u != nil && !u.root && u.cfg.Dir == "" }

// prepareOverlay makes the upper layer of cfg's Overlay, after checking
// that the kernel can build the overlay. Nothing is left on error.
func prepareOverlay(cfg *Config, id identity) (*overlayUpper, error) {
	o := cfg.Overlay
	if o == nil {
		return nil, nil
	}
	u := &overlayUpper{cfg: *o, root: os.Geteuid() == 0, userns: -1}
	if err := u.supported(); err != nil {
		return nil, err
	}
	if u.root {
		// One per sandbox: host root's sandboxes lease slots of its range
		// in turn (see idlease.go), so a cache by map would seldom hit.
		fd, err := newUserNS(id)
		if err != nil {
			return nil, err
		}
		u.userns, u.ownNS = fd, true
	}
	if o.Dir != "" {
		// Mode 0700, and for host root owned by root: files are stored
		// there with the sandbox's own ids, so a setuid file its root made
		// would be a setuid root file on the host, which no ordinary user
		// must reach.
		dir, err := os.MkdirTemp(o.Dir, "stockade-upper-")
		if err != nil {
			u.release()
			return nil, setupErr("overlay-upper", o.Dir, err)
		}
		u.dir = dir
		for _, d := range []string{"upper", "work"} {
			if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
				u.release()
				return nil, setupErr("overlay-upper", dir, err)
			}
		}
		return u, nil
	}
	if u.root {
		f, err := mount.NewUpperTmpfs(o.Size)
		if err != nil {
			u.release()
			return nil, mountSetupErr(err)
		}
		u.hold = f
	}
	return u, nil
}

// supported checks the kernel for what the overlay needs, by version:
// what fails anyway is reported by the step that fails.
func (u *overlayUpper) supported() error {
	switch {
	case !linux.KernelAtLeast(5, 11):
		return &FeatureError{Feature: "Overlay", MinKernel: "5.11", Err: errors.New("overlayfs in a user namespace")}
	case u.root && !linux.KernelAtLeast(5, 19):
		return &FeatureError{Feature: "Overlay", MinKernel: "5.19", Err: errors.New("host root's sandboxes need overlayfs over idmapped layers")}
	case u.root && u.cfg.Dir == "" && !linux.KernelAtLeast(6, 3):
		return &FeatureError{Feature: "Overlay with its upper layer on tmpfs", MinKernel: "6.3", Err: errors.New("host root's sandboxes need an idmapped tmpfs; set Overlay.Dir")}
	case u.root && u.cfg.Dir == "" && !linux.KernelAtLeast(6, 15):
		// The owner holds the tmpfs and gives the sandbox an idmapped
		// clone of it: cloning a detached mount needs 6.15.
		return &FeatureError{Feature: "Overlay with its upper layer on tmpfs", MinKernel: "6.15", Err: errors.New("host root's sandboxes need a clone of the owner's detached tmpfs; set Overlay.Dir")}
	}
	return nil
}

// mountSetupErr turns a *mount.Error into a *SetupError.
func mountSetupErr(err error) error {
	var me *mount.Error
	if errors.As(err, &me) {
		if errors.Is(err, unix.EINVAL) && me.Op == "overlay-upper" || me.Op == "overlay-lower" && errors.Is(err, unix.EINVAL) {
			return &FeatureError{Feature: "Overlay", Err: &SetupError{Stage: me.Op, Path: me.Path, Errno: unix.EINVAL,
				Err: errors.New("an idmapped mount of this file system is refused (EINVAL): it does not support idmapped mounts")}}
		}
		return setupErr(me.Op, me.Path, me.Err)
	}
	return setupErr("overlay", "", err)
}

// patch fills in the parts of the plan's overlay that are the sandbox's
// own: its upper directory, for a sandbox that mounts it itself.
func (u *overlayUpper) patch(plan *mount.Plan) {
	o := plan.Root.Overlay
	if o == nil {
		return
	}
	if !u.root {
		o.Upper = u.dir
		if u.cfg.Dir == "" {
			o.UpperSize = u.cfg.Size
		}
	}
}

// sources returns the owner's idmapped clones of the layers and of the
// upper layer, in the order of Overlay.FDs (host root only).
func (u *overlayUpper) sources() ([]*os.File, error) {
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		closeAll(files)
		return nil, mountSetupErr(err)
	}
	for _, l := range u.cfg.Layers {
		f, err := mount.CloneLayer(l, u.userns)
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
	}
	var f *os.File
	var err error
	if u.dir != "" {
		f, err = mount.CloneUpper(u.dir, u.userns)
	} else {
		f, err = mount.MapUpper(u.hold, u.userns)
	}
	if err != nil {
		return fail(err)
	}
	// The namespace is needed for these clones only.
	if u.ownNS {
		unix.Close(u.userns)
		u.userns, u.ownNS = -1, false
	}
	return append(files, f), nil
}

// path is the host path of the upper layer.
func (u *overlayUpper) path() (string, error) {
	switch {
	case u.dir != "":
		return filepath.Join(u.dir, "upper"), nil
	case u.hold != nil:
		return "/proc/self/fd/" + strconv.Itoa(int(u.hold.Fd())) + "/upper", nil
	}
	return "", ErrNotStarted
}

// release lets the upper layer go: the tmpfs is unmounted as its last
// descriptor closes, and the directory is removed unless kept.
func (u *overlayUpper) release() error {
	if u == nil {
		return nil
	}
	if u.hold != nil {
		u.hold.Close()
		u.hold = nil
	}
	if u.ownNS {
		unix.Close(u.userns)
		u.userns, u.ownNS = -1, false
	}
	if u.dir == "" || u.cfg.Keep {
		return nil
	}
	dir := u.dir
	u.dir = ""
	// overlayfs leaves work/work with mode 0.
	os.Chmod(filepath.Join(dir, "work", "work"), 0o700)
	return os.RemoveAll(dir)
}

// idMapText is m as /proc/PID/uid_map takes it.
func idMapText(m []syscall.SysProcIDMap) []byte {
	var s strings.Builder
	for _, e := range m {
		fmt.Fprintf(&s, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return []byte(s.String())
}

// fdSocket returns the two ends of a socket on which the sandbox sends
// the owner its upper layer's tmpfs: the owner's, non-blocking, and the
// sandbox's.
func fdSocket() (own, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "overlay-upper"), os.NewFile(uintptr(fds[1]), "overlay-upper"), nil
}

// recvUpper receives the upper layer's tmpfs mount the sandbox sent on
// sock before it reported that it runs.
func recvUpper(sock int) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if err != nil {
		return nil, setupErr("overlay-upper", "receive", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, setupErr("overlay-upper", "receive", errors.New("no descriptor in the message"))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, setupErr("overlay-upper", "receive", errors.New("expected one descriptor"))
	}
	return os.NewFile(uintptr(fds[0]), "overlay-upper"), nil
}

// Upper returns the host path of the Overlay's upper layer, for the owner to
// read until Close; else a *ConfigError, ErrNotStarted or ErrFinished.
func (s *Sandbox) Upper() (string, error) {
	if s.cfg.Overlay == nil {
		return "", configErr("Overlay", "is not set: the sandbox has no upper layer")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ovClosed && s.cfg.Overlay.Keep && s.ovKept != "":
		return s.ovKept, nil
	case s.ovClosed:
		return "", ErrFinished
	case s.ov == nil || !s.started:
		return "", ErrNotStarted
	}
	return s.ov.path()
}

// closeOverlay releases the upper layer at Close.
func (s *Sandbox) closeOverlay() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ov == nil || s.ovClosed {
		return
	}
	if s.ov.cfg.Keep && s.ov.dir != "" {
		s.ovKept = filepath.Join(s.ov.dir, "upper")
	}
	s.ovClosed = true
	s.ov.release()
}
