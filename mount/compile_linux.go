//go:build linux && (amd64 || arm64)

package mount

import (
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/sysplan"
)

// Compiled is a Plan compiled into the steps of a sysplan program: the same
// file system Apply builds, made by raw system calls in the child that
// starts the sandbox. The cells are filled in per start.
type Compiled struct {
	// RootFD is the cell for a detached copy of Root.Dir made by CloneRoot
	// (Nil when the root is a tmpfs or the child clones it itself).
	RootFD sysplan.Ref
	// BindFDs holds, per entry of the plan, the cell for a detached copy of
	// a Bind's source made by CloneSource (Nil for other entries, or when
	// the child clones them itself).
	BindFDs []sysplan.Ref
	// OverlayFDs holds, for an overlay root with parentClones, the cells
	// for the detached mounts of Overlay.FDs: one per lower layer, then the
	// upper layer's directory. SendFD is the cell for the socket of
	// Overlay.SendFD (Nil unless the plan asks for one).
	OverlayFDs []sysplan.Ref
	SendFD     sysplan.Ref
	// NodesFD is the cell for the tmpfs of MakeNodes (Nil unless the plan
	// has a Node).
	NodesFD sysplan.Ref
}

// Compile adds to b the steps that build p in the child's mount namespace
// and make it the child's root, as Apply does. With parentClones the
// parent clones the root directory and every bind source (CloneRoot,
// CloneSource) and hands them over through the Compiled cells; otherwise
// the child clones them with its own rights. The child must have
// CAP_SYS_ADMIN over its mount namespace. Every kind compiles.
func Compile(b *sysplan.Builder, p *Plan, parentClones bool) (*Compiled, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &compiler{
		b: b, root: b.Cell(), tfd: b.Cell(), pfd: b.Cell(), mfd: b.Cell(), xfd: b.Cell(),
		made:  map[string]bool{"/": true},
		out:   &Compiled{RootFD: sysplan.Nil, BindFDs: make([]sysplan.Ref, len(p.Mounts)), SendFD: sysplan.Nil, NodesFD: sysplan.Nil},
		clone: parentClones, devNull: sysplan.Nil, lateBind: lateBinds(p),
	}
	for i, m := range p.Mounts {
		c.out.BindFDs[i] = sysplan.Nil
		switch m.Kind {
		case Bind:
			fi, err := os.Stat(m.Source)
			if err != nil {
				return nil, &Error{"bind", m.Source, err}
			}
			c.dirSource = append(c.dirSource, fi.IsDir())
			continue
		}
		c.dirSource = append(c.dirSource, false)
	}
	s := b.Stage("make-private", "/")
	b.Syscall(s, unix.SYS_MOUNT, sysplan.Imm(0), sysplan.Ptr(b.String("/")), sysplan.Imm(0),
		sysplan.Imm(unix.MS_REC|unix.MS_PRIVATE), sysplan.Imm(0))
	if err := c.prepareSources(p); err != nil {
		return nil, err
	}
	c.makeRoot(p.Root)
	for i := range p.Mounts {
		c.place(i, p.Mounts[i])
	}
	for _, fd := range c.sealRO {
		c.setattr(b.Stage("remount-ro", ""), sysplan.Load(fd), unix.MOUNT_ATTR_RDONLY, 0, false)
		if fd != c.root && !c.kept(fd) { // the root is closed after the pivot
			c.close(fd)
		}
	}
	c.pivot()
	c.propagate(p.Root.Propagation)
	c.close(c.root)
	if !c.devNull.IsNil() {
		c.close(c.devNull)
	}
	return c.out, nil
}

type compiler struct {
	b     *sysplan.Builder
	out   *Compiled
	clone bool
	// root is the cell of the new root's mount; tfd, pfd, mfd and xfd are
	// scratch cells for a target, its parent, a detached mount and a file.
	root, tfd, pfd, mfd, xfd sysplan.Ref
	sources                  []sysplan.Ref // per entry: the cell of a Bind's detached source
	lateBind                 []bool        // per entry: a Bind cloned where it is placed (lateBinds)
	dirSource                []bool        // per entry: a Bind's source is a directory
	devNull                  sysplan.Ref   // the cell of an O_PATH fd of the host's /dev/null
	sealRO                   []sysplan.Ref // mounts made read-only at the end
	props                    []propCell    // entries' mounts that get a propagation at the end
	made                     map[string]bool
	hows                     map[uint64]sysplan.Ref
	strs                     map[string]sysplan.Ref
}

// propCell is the cell of an entry's mount, kept open once attached, and
// the propagation it gets at the end (see applier.propagate).
type propCell struct {
	cell   sysplan.Ref
	target string
	prop   Propagation
}

// kept reports whether the cell holds a mount that gets a propagation at
// the end, and must stay open until then.
func (c *compiler) kept(cell sysplan.Ref) bool {
	for _, pc := range c.props {
		if pc.cell == cell {
			return true
		}
	}
	return false
}

// propagate sets the propagation of the root and of the entries that ask
// for one, once the root is in place, as Apply does.
func (c *compiler) propagate(root Propagation) {
	if !root.private() {
		c.setProp(c.b.Stage("propagation", "/"), sysplan.Load(c.root), root)
	}
	for _, pc := range c.props {
		c.setProp(c.b.Stage("propagation", pc.target), sysplan.Load(pc.cell), pc.prop)
		c.close(pc.cell)
	}
}

// setProp sets the propagation p on the mount fd alone.
func (c *compiler) setProp(stage int, fd sysplan.Arg, p Propagation) {
	a := c.b.Alloc(32)
	c.b.PutU64(a.Field(16), propagationFlag(p))
	c.b.Syscall(stage, unix.SYS_MOUNT_SETATTR, fd, c.str(""), sysplan.Imm(unix.AT_EMPTY_PATH), sysplan.Ptr(a), sysplan.Imm(32))
}

func (c *compiler) str(s string) sysplan.Arg {
	if c.strs == nil {
		c.strs = map[string]sysplan.Ref{}
	}
	r, ok := c.strs[s]
	if !ok {
		r = c.b.String(s)
		c.strs[s] = r
	}
	return sysplan.Ptr(r)
}

// how returns a struct open_how with flags, resolved inside the new root.
func (c *compiler) how(flags uint64) sysplan.Arg {
	if c.hows == nil {
		c.hows = map[uint64]sysplan.Ref{}
	}
	r, ok := c.hows[flags]
	if !ok {
		r = c.b.Alloc(24)
		c.b.PutU64(r, flags|unix.O_CLOEXEC)
		c.b.PutU64(r.Field(16), resolveFlags)
		c.hows[flags] = r
	}
	return sysplan.Ptr(r)
}

func (c *compiler) close(cell sysplan.Ref) {
	c.b.Syscall(c.b.Stage("close", ""), unix.SYS_CLOSE, sysplan.Load(cell))
}

// openat2 resolves name inside the new root into the cell dst.
func (c *compiler) openat2(stage int, name string, flags uint64, dst sysplan.Ref) *sysplan.Step {
	return c.b.Syscall(stage, unix.SYS_OPENAT2, sysplan.Load(c.root), c.str(name), c.how(flags), sysplan.Imm(24)).Save(dst)
}

// setattr sets attrs (and a private propagation) on the detached or
// attached mount fd.
func (c *compiler) setattr(stage int, fd sysplan.Arg, attrs uint64, flags uint64, private bool) {
	a := c.b.Alloc(32)
	c.b.PutU64(a, attrs)
	if private {
		c.b.PutU64(a.Field(16), unix.MS_PRIVATE)
	}
	c.b.Syscall(stage, unix.SYS_MOUNT_SETATTR, fd, c.str(""), sysplan.Imm(unix.AT_EMPTY_PATH|flags), sysplan.Ptr(a), sysplan.Imm(32))
}

// cloneTree clones the tree at dirfd/name into dst, detached, with attrs.
func (c *compiler) cloneTree(stage int, dirfd sysplan.Arg, name string, attrs uint64, dst sysplan.Ref) {
	flags := uint64(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_RECURSIVE)
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	c.b.Syscall(stage, unix.SYS_OPEN_TREE, dirfd, c.str(name), sysplan.Imm(flags)).Save(dst)
	c.setattr(stage, sysplan.Load(dst), attrs, unix.AT_RECURSIVE, true)
}

// prepareSources prepares the bind sources and /dev/null, while the host tree is
// in view.
func (c *compiler) prepareSources(p *Plan) error {
	c.sources = make([]sysplan.Ref, len(p.Mounts))
	for i, m := range p.Mounts {
		c.sources[i] = sysplan.Nil
		switch m.Kind {
		case Bind:
			c.sources[i] = c.b.Cell()
			if c.clone {
				c.out.BindFDs[i] = c.sources[i]
			} else if !c.lateBind[i] {
				c.cloneTree(c.b.Stage("bind", m.Source), sysplan.Imm(unix.AT_FDCWD), m.Source, bindAttrs(m), c.sources[i])
			}
		case Node:
			if !c.out.NodesFD.IsNil() {
				continue
			}
			if !c.clone {
				return &Error{"node", m.Target, errNodeParent}
			}
			c.out.NodesFD = c.b.Cell()
			c.b.Syscall(c.b.Stage("node", stagePoint(true)), unix.SYS_MOVE_MOUNT, sysplan.Load(c.out.NodesFD), c.str(""),
				sysplan.Imm(unix.AT_FDCWD), c.str(stagePoint(true)), sysplan.Imm(unix.MOVE_MOUNT_F_EMPTY_PATH))
		case Mask:
			if !c.devNull.IsNil() {
				continue
			}
			var st unix.Stat_t
			if err := unix.Stat("/dev/null", &st); err != nil {
				return &Error{"mask", "/dev/null", err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
				return &Error{"mask", "/dev/null", ErrNotDevNull}
			}
			c.devNull = c.b.Cell()
			c.b.Syscall(c.b.Stage("mask", "/dev/null"), unix.SYS_OPENAT, sysplan.Imm(unix.AT_FDCWD), c.str("/dev/null"),
				sysplan.Imm(unix.O_PATH|unix.O_CLOEXEC)).Save(c.devNull)
		}
	}
	return nil
}

func (c *compiler) makeRoot(r Root) {
	b := c.b
	switch {
	case r.Overlay != nil:
		c.overlay(r.Overlay)
	case r.Dir == "":
		c.newTmpfs(b.Stage("tmpfs", "/"), r.Size, r.Inodes, 0o755, 0, 0, 0, c.root)
		c.sealRO = append(c.sealRO, c.root)
	case c.clone:
		c.out.RootFD = c.root
	default:
		c.cloneTree(b.Stage("bind", r.Dir), sysplan.Imm(unix.AT_FDCWD), r.Dir, rootAttrs(r), c.root)
	}
	b.Syscall(b.Stage("attach-root", "/"), unix.SYS_MOVE_MOUNT, sysplan.Load(c.root), c.str(""),
		sysplan.Imm(unix.AT_FDCWD), c.str("/"), sysplan.Imm(unix.MOVE_MOUNT_F_EMPTY_PATH))
}

// newTmpfs makes a detached tmpfs in dst.
func (c *compiler) newTmpfs(stage int, size, inodes int64, mode uint32, uid, gid int, attrs uint64, dst sysplan.Ref) {
	c.newMount(stage, "tmpfs", tmpfsOptions(size, inodes, mode, uid, gid), attrs|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, dst)
}

// newMount makes a detached mount of a new file system instance in dst.
func (c *compiler) newMount(stage int, fstype string, opts [][2]string, attrs uint64, dst sysplan.Ref) {
	b := c.b
	fs := c.xfd
	b.Syscall(stage, unix.SYS_FSOPEN, c.str(fstype), sysplan.Imm(unix.FSOPEN_CLOEXEC)).Save(fs)
	for _, o := range withSource(fstype, opts) {
		if o[1] == "" {
			b.Syscall(stage, unix.SYS_FSCONFIG, sysplan.Load(fs), sysplan.Imm(unix.FSCONFIG_SET_FLAG), c.str(o[0]), sysplan.Imm(0), sysplan.Imm(0))
		} else {
			b.Syscall(stage, unix.SYS_FSCONFIG, sysplan.Load(fs), sysplan.Imm(unix.FSCONFIG_SET_STRING), c.str(o[0]), c.str(o[1]), sysplan.Imm(0))
		}
	}
	b.Syscall(stage, unix.SYS_FSCONFIG, sysplan.Load(fs), sysplan.Imm(unix.FSCONFIG_CMD_CREATE), sysplan.Imm(0), sysplan.Imm(0), sysplan.Imm(0))
	b.Syscall(stage, unix.SYS_FSMOUNT, sysplan.Load(fs), sysplan.Imm(unix.FSMOUNT_CLOEXEC), sysplan.Imm(attrs)).Save(dst)
	c.close(fs)
}

// mkdirAll leaves in c.tfd an O_PATH descriptor of the directory name
// inside the new root, creating it and its missing parents with mode 0755.
func (c *compiler) mkdirAll(stage int, name string) {
	b := c.b
	if name != "/" {
		parts := strings.Split(name[1:], "/")
		for i := range parts {
			prefix := "/" + strings.Join(parts[:i+1], "/")
			if c.made[prefix] {
				continue
			}
			parent := path.Dir(prefix)
			dirfd := sysplan.Load(c.root)
			if parent != "/" {
				c.openat2(stage, parent, unix.O_PATH|unix.O_DIRECTORY, c.pfd)
				dirfd = sysplan.Load(c.pfd)
			}
			next := b.NewLabel()
			b.Syscall(stage, unix.SYS_MKDIRAT, dirfd, c.str(path.Base(prefix)), sysplan.Imm(0o755)).OnErr(uint64(unix.EEXIST), next)
			b.Place(next)
			if parent != "/" {
				c.close(c.pfd)
			} else {
				// A label needs a step to name.
				b.Syscall(stage, unix.SYS_GETPID)
			}
			c.made[prefix] = true
		}
	}
	c.openat2(stage, name, unix.O_PATH|unix.O_DIRECTORY, c.tfd)
}

// attach moves the detached mount in the cell src onto target, creating
// the target as a directory or an empty file first when it is missing,
// and closes src.
func (c *compiler) attach(stage int, src sysplan.Ref, target string, dir bool) {
	b := c.b
	if dir {
		c.mkdirAll(stage, target)
	} else {
		create, found := b.NewLabel(), b.NewLabel()
		c.openat2(stage, target, unix.O_PATH, c.tfd).OnErr(uint64(unix.ENOENT), create)
		b.Jump(found)
		b.Place(create)
		c.mkdirAll(stage, path.Dir(target))
		b.Syscall(stage, unix.SYS_OPENAT, sysplan.Load(c.tfd), c.str(path.Base(target)),
			sysplan.Imm(unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC), sysplan.Imm(0o444)).Save(c.pfd)
		c.close(c.pfd)
		c.close(c.tfd)
		c.openat2(stage, target, unix.O_PATH, c.tfd)
		b.Place(found)
	}
	c.move(stage, src)
	c.close(c.tfd)
	if !c.kept(src) {
		c.close(src)
	}
}

// move attaches the detached mount in src at the target open in c.tfd.
func (c *compiler) move(stage int, src sysplan.Ref) {
	c.b.Syscall(stage, unix.SYS_MOVE_MOUNT, sysplan.Load(src), c.str(""), sysplan.Load(c.tfd), c.str(""),
		sysplan.Imm(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
}

// place adds the steps for entry i.
func (c *compiler) place(i int, m Mount) {
	b := c.b
	stage := b.Stage(string(m.Kind), m.Target)
	switch m.Kind {
	case Bind:
		if c.lateBind[i] {
			c.late(stage, c.sources[i], i, m)
		}
		if !m.Propagation.private() {
			c.props = append(c.props, propCell{c.sources[i], m.Target, m.Propagation})
		}
		c.attach(stage, c.sources[i], m.Target, c.dirSource[i])
	case Tmpfs:
		fd := c.mfd
		if m.ReadOnly || !m.Propagation.private() {
			fd = b.Cell()
		}
		if m.ReadOnly {
			c.sealRO = append(c.sealRO, fd)
		}
		if !m.Propagation.private() {
			c.props = append(c.props, propCell{fd, m.Target, m.Propagation})
		}
		c.newMount(stage, "tmpfs", withSource(m.Source, tmpfsOptions(m.Size, m.Inodes, unixMode(m.Mode), m.UID, m.GID)), unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, fd)
		if m.ReadOnly {
			// Keep fd open for the seal: attach without closing it.
			c.mkdirAll(stage, m.Target)
			c.move(stage, fd)
			c.close(c.tfd)
			return
		}
		c.attach(stage, fd, m.Target, true)
	case Node:
		b.Syscall(stage, unix.SYS_OPEN_TREE, sysplan.Load(c.out.NodesFD), c.str(nodeName(i)),
			sysplan.Imm(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)).Save(c.mfd)
		c.attach(stage, c.mfd, m.Target, false)
	case Proc:
		c.newMount(stage, "proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, c.mfd)
		c.attach(stage, c.mfd, m.Target, true)
	case Sysfs:
		c.newMount(stage, "sysfs", nil, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, c.mfd)
		c.attach(stage, c.mfd, m.Target, true)
	case Devpts:
		opts := devptsOptions(m)
		c.newMount(stage, "devpts", opts, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC, c.mfd)
		c.attach(stage, c.mfd, m.Target, true)
	case Mqueue:
		c.newMount(stage, "mqueue", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, c.mfd)
		c.attach(stage, c.mfd, m.Target, true)
	case Write:
		c.openat2(stage, m.Target, unix.O_WRONLY|unix.O_NOFOLLOW, c.xfd)
		b.Syscall(stage, unix.SYS_WRITE, sysplan.Load(c.xfd), sysplan.Ptr(b.Bytes(m.Data)), sysplan.Imm(len(m.Data))).Expect(uint64(len(m.Data)))
		c.close(c.xfd)
	case Dir:
		c.mkdirAll(stage, m.Target)
		c.close(c.tfd)
		c.openat2(stage, m.Target, unix.O_RDONLY|unix.O_DIRECTORY, c.xfd)
		c.chmodOwn(stage, m)
		c.close(c.xfd)
	case File:
		c.mkdirAll(stage, path.Dir(m.Target))
		b.Syscall(stage, unix.SYS_OPENAT, sysplan.Load(c.tfd), c.str(path.Base(m.Target)),
			sysplan.Imm(unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC), sysplan.Imm(0o600)).Save(c.xfd)
		if len(m.Data) > 0 {
			b.Syscall(stage, unix.SYS_WRITE, sysplan.Load(c.xfd), sysplan.Ptr(b.Bytes(m.Data)), sysplan.Imm(len(m.Data))).Expect(uint64(len(m.Data)))
		}
		c.chmodOwn(stage, m)
		c.close(c.xfd)
		c.close(c.tfd)
	case Symlink:
		c.mkdirAll(stage, path.Dir(m.Target))
		b.Syscall(stage, unix.SYS_SYMLINKAT, c.str(m.Source), sysplan.Load(c.tfd), c.str(path.Base(m.Target)))
		c.close(c.tfd)
	case Mask:
		c.mask(stage, m.Target)
	case Cover:
		c.cover(stage, m)
	case ReadOnly:
		end := b.NewLabel()
		c.openat2(stage, m.Target, unix.O_PATH|unix.O_NOFOLLOW, c.tfd).OnErr(uint64(unix.ENOENT), end)
		c.cloneTree(stage, sysplan.Load(c.tfd), "", unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, c.mfd)
		c.move(stage, c.mfd)
		c.close(c.mfd)
		c.close(c.tfd)
		b.Place(end)
		b.Syscall(stage, unix.SYS_GETPID)
	}
}

// late clones the source of the Bind entry i into src where it is placed,
// as Apply does: the child's own clone is made now; the parent's is
// attached in the old root (stagePoint) and cloned from there, and the
// fresh clone takes its descriptor's number (see applier.reclone). Where
// either step fails the parent's clone is placed as it is.
func (c *compiler) late(stage int, src sysplan.Ref, i int, m Mount) {
	b := c.b
	if !c.clone {
		c.cloneTree(stage, sysplan.Imm(unix.AT_FDCWD), m.Source, bindAttrs(m), src)
		return
	}
	keep := b.NewLabel()
	b.Syscall(stage, unix.SYS_MOVE_MOUNT, sysplan.Load(src), c.str(""), sysplan.Imm(unix.AT_FDCWD), c.str(stagePoint(c.dirSource[i])),
		sysplan.Imm(unix.MOVE_MOUNT_F_EMPTY_PATH)).OnErr(sysplan.AnyErrno, keep)
	b.Syscall(stage, unix.SYS_OPEN_TREE, sysplan.Load(src), c.str(""), sysplan.Imm(reclone)).Save(c.mfd).OnErr(sysplan.AnyErrno, keep)
	b.Syscall(stage, unix.SYS_DUP3, sysplan.Load(c.mfd), sysplan.Load(src), sysplan.Imm(unix.O_CLOEXEC))
	c.close(c.mfd)
	b.Place(keep)
}

// chmodOwn gives the file open in c.xfd the mode and owner of m.
func (c *compiler) chmodOwn(stage int, m Mount) {
	c.b.Syscall(stage, unix.SYS_FCHMOD, sysplan.Load(c.xfd), sysplan.Imm(unixMode(m.Mode)))
	if m.UID != 0 || m.GID != 0 {
		c.b.Syscall(stage, unix.SYS_FCHOWN, sysplan.Load(c.xfd), sysplan.Imm(m.UID), sysplan.Imm(m.GID))
	}
}

// cover places a read-only file holding m.Data over the file at m.Target,
// as Apply does: the file is written on a scratch tmpfs, which is attached
// over the root while the file is cloned out of it (only a tree that is
// mounted can be cloned) and detached again. A missing target is left
// alone; a directory cannot be covered (EISDIR).
func (c *compiler) cover(stage int, m Mount) {
	b := c.b
	file, end := b.NewLabel(), b.NewLabel()
	c.openat2(stage, m.Target, unix.O_PATH|unix.O_DIRECTORY, c.tfd).
		OnErr(uint64(unix.ENOENT), end).OnErr(uint64(unix.ENOTDIR), file)
	// A directory: opening it for writing fails with EISDIR, and so does
	// the start. (No result can be 1<<62: one that is not EISDIR fails
	// with EPROTO.)
	c.openat2(stage, m.Target, unix.O_WRONLY|unix.O_NONBLOCK, c.pfd).Expect(1 << 62)
	b.Place(file)
	c.openat2(stage, m.Target, unix.O_PATH, c.tfd)
	c.newTmpfs(stage, int64(len(m.Data))+4096, 2, 0o755, 0, 0, 0, c.mfd)
	b.Syscall(stage, unix.SYS_OPENAT, sysplan.Load(c.mfd), c.str("f"),
		sysplan.Imm(unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC), sysplan.Imm(0o600)).Save(c.xfd)
	if len(m.Data) > 0 {
		b.Syscall(stage, unix.SYS_WRITE, sysplan.Load(c.xfd), sysplan.Ptr(b.Bytes(m.Data)), sysplan.Imm(len(m.Data))).Expect(uint64(len(m.Data)))
	}
	c.chmodOwn(stage, m)
	c.close(c.xfd)
	b.Syscall(stage, unix.SYS_MOVE_MOUNT, sysplan.Load(c.mfd), c.str(""), sysplan.Load(c.root), c.str(""),
		sysplan.Imm(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
	c.cloneTree(stage, sysplan.Load(c.mfd), "f", unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, c.xfd)
	// Detach the tmpfs from the root again, from inside it: it has no
	// path of its own. The pivot sets the working directory anew.
	b.Syscall(stage, unix.SYS_FCHDIR, sysplan.Load(c.mfd))
	b.Syscall(stage, unix.SYS_UMOUNT2, c.str("."), sysplan.Imm(unix.MNT_DETACH))
	c.move(stage, c.xfd)
	c.close(c.xfd)
	c.close(c.mfd)
	c.close(c.tfd)
	b.Place(end)
	b.Syscall(stage, unix.SYS_GETPID)
}

// mask covers a file with the host's /dev/null and a directory with an
// empty read-only tmpfs; a missing target is left alone.
func (c *compiler) mask(stage int, target string) {
	b := c.b
	file, end := b.NewLabel(), b.NewLabel()
	c.openat2(stage, target, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY, c.tfd).
		OnErr(uint64(unix.ENOENT), end).OnErr(uint64(unix.ENOTDIR), file)
	c.newTmpfs(stage, 4096, 1, 0o555, 0, 0, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOEXEC, c.mfd)
	c.move(stage, c.mfd)
	c.close(c.mfd)
	c.close(c.tfd)
	b.Jump(end)
	b.Place(file)
	c.openat2(stage, target, unix.O_PATH|unix.O_NOFOLLOW, c.tfd)
	c.cloneTree(stage, sysplan.Load(c.devNull), "", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_RDONLY, c.mfd)
	c.move(stage, c.mfd)
	c.close(c.mfd)
	c.close(c.tfd)
	b.Place(end)
	b.Syscall(stage, unix.SYS_GETPID)
}

// pivot makes the new root the child's root and detaches the old one, or
// falls back to chroot where / cannot be pivoted (an initramfs).
func (c *compiler) pivot() {
	b := c.b
	chroot, done := b.NewLabel(), b.NewLabel()
	b.Syscall(b.Stage("chdir", "/"), unix.SYS_FCHDIR, sysplan.Load(c.root))
	b.Syscall(b.Stage("pivot_root", "/"), unix.SYS_PIVOT_ROOT, c.str("."), c.str(".")).OnErr(uint64(unix.EINVAL), chroot)
	b.Syscall(b.Stage("umount-old-root", "/"), unix.SYS_UMOUNT2, c.str("."), sysplan.Imm(unix.MNT_DETACH))
	b.Jump(done)
	b.Place(chroot)
	b.Syscall(b.Stage("chroot", "/"), unix.SYS_CHROOT, c.str("."))
	b.Place(done)
	b.Syscall(b.Stage("chdir", "/"), unix.SYS_CHDIR, c.str("/"))
}
