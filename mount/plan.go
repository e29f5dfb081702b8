package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/stockade/stockade/internal/errdefs"
)

// Kind says what a Mount entry places at its target.
type Kind string

// The kinds of entries in a Plan. Users of the sandbox package name only Bind
// and Tmpfs in their own mounts; the other kinds make up the standard parts
// of the root file system.
const (
	// Bind mounts the host path Source at Target, read-only unless Writable.
	Bind Kind = "bind"
	// Tmpfs mounts a fresh tmpfs of Size bytes and Inodes inodes at Target,
	// owned by UID and GID with permissions Mode, writable unless ReadOnly.
	Tmpfs Kind = "tmpfs"
	// Proc mounts a procfs for the sandbox's pid namespace at Target.
	Proc Kind = "proc"
	// Devpts mounts a new devpts instance at Target, with its own ptmx.
	Devpts Kind = "devpts"
	// Sysfs mounts a read-only sysfs at Target. It shows the network
	// devices of the applying process's network namespace, which must
	// belong to its user namespace.
	Sysfs Kind = "sysfs"
	// Mqueue mounts the POSIX message queue file system of the applying
	// process's IPC namespace at Target.
	Mqueue Kind = "mqueue"
	// Write writes Data into the file Target, which must exist and is
	// neither created nor truncated: a kernel setting below /proc/sys,
	// written once the Proc entry before it is in place.
	Write Kind = "write"
	// Dir creates the directory Target with permissions Mode.
	Dir Kind = "dir"
	// File creates the regular file Target holding Data, with permissions
	// Mode.
	File Kind = "file"
	// Symlink creates a symbolic link at Target pointing to Source.
	Symlink Kind = "symlink"
	// Cover places a read-only file holding Data, with permissions Mode,
	// over the file at Target, following symbolic links inside the root:
	// the file lives on a small tmpfs of its own, so the root beneath is
	// never written to. A missing Target is left alone. It lets a sandbox
	// with a root directory get generated files such as /etc/hosts.
	Cover Kind = "cover"
	// Mask hides Target: a file is covered by /dev/null and a directory by
	// an empty read-only tmpfs. A missing Target is left alone.
	Mask Kind = "mask"
	// ReadOnly makes the mount at or holding Target read-only from there
	// down, by binding Target onto itself read-only. A missing Target is
	// left alone.
	ReadOnly Kind = "readonly"
	// Node places a device node or a FIFO at Target, owned by UID and
	// GID: Mode holds its type (fs.ModeDevice, with fs.ModeCharDevice for
	// a character device, or fs.ModeNamedPipe) and permissions, Rdev its
	// device number. MakeNodes makes it on the host, in a tmpfs of its
	// own, which FD holds; Apply and Compile bind it where it belongs. It
	// is not mounted nodev.
	Node Kind = "node"
)

// Mount is one entry of a Plan. Which fields matter depends on Kind; the
// others must be zero.
type Mount struct {
	Kind Kind `json:"kind"`
	// Source is the host path of a Bind, or the link text of a Symlink.
	// Of a Tmpfs it is the name the mount table shows as the file
	// system's source; empty means "tmpfs". (Every new file system shows
	// its type there: "proc", "devpts" ...)
	// A privileged caller's CloneSource follows a symbolic link in a
	// Bind's Source only when root or the caller owns it.
	Source string `json:"source,omitempty"`
	// Target is the absolute path inside the sandbox.
	Target string `json:"target"`
	// Writable makes a Bind writable. The zero value is read-only.
	Writable bool `json:"writable,omitempty"`
	// ReadOnly makes a Tmpfs read-only once the whole plan is in place, so
	// that it can be filled by later entries but not by the sandbox.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Size is the size limit of a Tmpfs in bytes. It must be positive.
	Size int64 `json:"size,omitempty"`
	// Inodes is the inode limit of a Tmpfs. Zero means the kernel's default
	// (half the number of physical RAM pages). Of a Devpts, it is the most
	// pseudo-terminals the instance holds at once (its max option), from 0
	// to MaxPtys: opening its ptmx beyond that fails with ENOSPC. Zero
	// means the kernel's default, MaxPtys.
	Inodes int64 `json:"inodes,omitempty"`
	// Mode holds the permission bits of a Tmpfs root, a Dir, a File or a
	// Cover.
	Mode fs.FileMode `json:"mode,omitempty"`
	// UID and GID own a Tmpfs root, a Dir, a File or a Cover, as ids
	// inside the sandbox.
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// Data is the content of a File or a Cover.
	Data []byte `json:"data,omitempty"`
	// Device marks a Bind of a host device node, which is not mounted nodev.
	Device bool `json:"device,omitempty"`
	// FD, when positive, is a descriptor of the applying process that
	// holds a detached copy of Source made by CloneSource, typically by a
	// more privileged parent. Apply attaches it instead of cloning Source
	// itself, and closes it.
	FD int `json:"fd,omitempty"`
	// Rdev is the device number of a Node (unix.Mkdev).
	Rdev uint64 `json:"rdev,omitempty"`
	// Owner, of a writable Bind, names the host user and group whose
	// rights the sandbox's user gets in it, through an idmapped mount
	// (see IDMapSource): what it creates there lands on the host as
	// theirs, and their files are its own. Nil means the owner of Source.
	// The sandbox package applies it for host root (see
	// sandbox.Config.Mounts); Apply and Compile leave it to the caller.
	Owner *Owner `json:"owner,omitempty"`
	// NoIDMap, of a writable Bind, binds Source without an idmapping:
	// the sandbox's user writes there as its own host id, as any other
	// user of the host would, and needs the permission of one.
	NoIDMap bool `json:"noIDMap,omitempty"`
	// Propagation is the propagation of a Bind's or a Tmpfs's mount, its
	// own alone: the mounts beneath it (those of a Bind's source, later
	// entries) keep theirs. The zero value is private.
	Propagation Propagation `json:"propagation,omitempty"`
}

// Propagation says whether mount and unmount events beneath a mount of the
// plan spread to other mounts (mount_namespaces(7)). Every mount of a plan
// is first made private, which takes it out of any peer group of the
// host's; a Shared mount then gets a new peer group of its own, whose
// members can only be copies made from inside: other mounts of the same
// namespace (a bind of it made inside) and of namespaces later copied from
// it. So whatever the propagation, nothing mounted inside reaches the host
// and nothing the host mounts reaches inside. A slave is not offered: it
// would take the host's mount events in, with the host's attributes, past
// the read-only, nosuid, nodev and idmapping the plan sets.
type Propagation string

// The propagations of a mount of a plan.
const (
	// Private mounts neither send nor receive mount events. "private"
	// means the same.
	Private Propagation = ""
	// Shared mounts send and receive mount events within their peer group,
	// which the plan makes new.
	Shared Propagation = "shared"
	// Unbindable mounts are private and cannot be the source of a bind:
	// a bind of one, or of a tree holding one, fails (EINVAL).
	Unbindable Propagation = "unbindable"
)

// private reports whether p is Private.
func (p Propagation) private() bool { return p == Private || p == "private" }

// Validate checks p.
func (p Propagation) Validate() error {
	switch p {
	case Private, "private", Shared, Unbindable:
		return nil
	case "slave":
		return errors.New("slave is not offered: a slave takes the host's mount events in; use private or shared")
	}
	return fmt.Errorf("must be %q (private), %q or %q, not %q", Private, Shared, Unbindable, string(p))
}

// Owner is a host user and group, the owner of what a sandbox writes in
// an idmapped Bind.
type Owner struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// Root is the root of a Plan: an empty tmpfs when Dir is empty, else the
// host directory Dir.
type Root struct {
	// Dir is a host directory to use as the root. Empty means a fresh tmpfs.
	Dir string `json:"dir,omitempty"`
	// Writable makes a Dir root writable. A tmpfs root is always read-only
	// once the plan is in place.
	Writable bool `json:"writable,omitempty"`
	// Size and Inodes limit a tmpfs root.
	Size   int64 `json:"size,omitempty"`
	Inodes int64 `json:"inodes,omitempty"`
	// FD, when positive, holds a detached copy of Dir made by CloneRoot;
	// see Mount.FD.
	FD int `json:"fd,omitempty"`
	// Overlay, when set, makes the root an overlay of read-only layers and
	// a writable upper layer; Dir must then be empty.
	Overlay *Overlay `json:"overlay,omitempty"`
	// Propagation is the propagation of the root's mount alone (see
	// Mount.Propagation), set once the root is in place. The zero value
	// is private.
	Propagation Propagation `json:"propagation,omitempty"`
}

// Overlay is a root made by overlayfs: read-only lower layers, lowest
// first, and a writable upper layer. It is mounted by the applying process
// in its user namespace, with the userxattr option: an opaque directory of
// a layer carries user.overlay.opaque="y", a whiteout is a character
// device 0:0. The layers and the upper directory are staged on mounts of
// the applying process's own before overlayfs stacks them, so that an
// idmapped layer made by a parent works on kernels that take only
// attached layers. Linux 5.11 (overlayfs in a user namespace); 5.19 for
// idmapped layers.
type Overlay struct {
	// Lower are the host directories of the lower layers, lowest first.
	Lower []string `json:"lower"`
	// Upper is a host directory holding the directories "upper" and
	// "work" of the upper layer. Empty means a fresh tmpfs of UpperSize
	// bytes, made by the applying process, holding both.
	Upper     string `json:"upper,omitempty"`
	UpperSize int64  `json:"upperSize,omitempty"`
	// FDs, when set, are descriptors of the applying process holding
	// detached mounts made by a parent, used instead of Lower and Upper:
	// one per lower layer, then the directory that holds "upper" and
	// "work". Apply attaches and closes them.
	FDs []int `json:"fds,omitempty"`
	// SendFD, when positive and the upper layer is a tmpfs the applying
	// process makes, is a socket on which it sends that tmpfs's mount
	// (SCM_RIGHTS, with one byte), so that the parent can read the upper
	// layer after the sandbox's mount namespace is gone.
	SendFD int `json:"sendFD,omitempty"`
}

// MaxLayers is the most lower layers an Overlay may have (overlayfs's
// own limit is 500).
const MaxLayers = 500

// Validate checks an overlay root. Errors are *ConfigError with Field
// relative to the Overlay ("Lower[2]").
func (o *Overlay) Validate() error {
	if len(o.Lower) == 0 {
		return &ConfigError{Field: "Lower", Err: errors.New("must name at least one layer")}
	}
	if len(o.Lower) > MaxLayers {
		return &ConfigError{Field: "Lower", Err: fmt.Errorf("holds %d layers; overlayfs takes at most %d", len(o.Lower), MaxLayers)}
	}
	for i, l := range o.Lower {
		if err := checkHostPath(l); err != nil {
			return &ConfigError{Field: fmt.Sprintf("Lower[%d]", i), Err: err}
		}
	}
	if o.Upper != "" {
		if err := checkHostPath(o.Upper); err != nil {
			return &ConfigError{Field: "Upper", Err: err}
		}
		if o.UpperSize != 0 {
			return &ConfigError{Field: "UpperSize", Err: errors.New("applies to a tmpfs upper layer only, not with Upper")}
		}
	}
	if o.UpperSize < 0 {
		return &ConfigError{Field: "UpperSize", Err: errors.New("must not be negative")}
	}
	if len(o.FDs) != 0 && len(o.FDs) != len(o.Lower)+1 {
		return &ConfigError{Field: "FDs", Err: fmt.Errorf("must hold %d descriptors (one per layer and the upper), not %d", len(o.Lower)+1, len(o.FDs))}
	}
	return nil
}

// checkHostPath accepts absolute, clean host paths.
func checkHostPath(p string) error {
	switch {
	case !path.IsAbs(p):
		return fmt.Errorf("must be an absolute path, not %q", p)
	case path.Clean(p) != p:
		return fmt.Errorf("must be a clean path (%s)", path.Clean(p))
	case strings.IndexByte(p, 0) >= 0:
		return errors.New("must not contain a NUL byte")
	}
	return nil
}

// Plan is a whole root file system: its root and the entries placed on it,
// in order. An entry may be placed inside an earlier one.
type Plan struct {
	Root   Root    `json:"root"`
	Mounts []Mount `json:"mounts"`
}

// BindMount returns an entry that binds the host path source read-only at
// target.
func BindMount(source, target string) Mount {
	return Mount{Kind: Bind, Source: source, Target: target}
}

// TmpfsMount returns an entry for a writable tmpfs of size bytes at target,
// owned by root inside the sandbox with permissions 0755.
func TmpfsMount(target string, size int64) Mount {
	return Mount{Kind: Tmpfs, Target: target, Size: size, Mode: 0o755}
}

// ErrInvalidConfig is matched by every *ConfigError. It is
// sandbox.ErrInvalidConfig.
var ErrInvalidConfig = errdefs.ErrInvalidConfig

// ErrNotSupported is matched by every error about a feature this host
// lacks. It is sandbox.ErrNotSupported.
var ErrNotSupported = errdefs.ErrNotSupported

// ConfigError is an invalid entry of a Plan. Field is the path of the
// offending field, such as "Mounts[2].Target". It is sandbox.ConfigError.
type ConfigError = errdefs.ConfigError

// Validate checks the plan without touching the system. It returns a
// *ConfigError naming the first offending field, with fields named as in
// Plan ("Mounts[3].Source").
func (p *Plan) Validate() error {
	if p.Root.Dir != "" && !path.IsAbs(p.Root.Dir) {
		return &ConfigError{Field: "Root.Dir", Err: errors.New("must be an absolute path")}
	}
	if strings.IndexByte(p.Root.Dir, 0) >= 0 {
		return &ConfigError{Field: "Root.Dir", Err: errors.New("must not contain a NUL byte")}
	}
	if o := p.Root.Overlay; o != nil {
		if p.Root.Dir != "" {
			return &ConfigError{Field: "Root.Overlay", Err: errors.New("must not be set with Root.Dir")}
		}
		if err := o.Validate(); err != nil {
			var fe *ConfigError
			if errors.As(err, &fe) {
				return &ConfigError{Field: "Root.Overlay." + fe.Field, Err: fe.Err}
			}
			return err
		}
	}
	if p.Root.Dir == "" && p.Root.Size < 0 {
		return &ConfigError{Field: "Root.Size", Err: errors.New("must not be negative")}
	}
	if err := p.Root.Propagation.Validate(); err != nil {
		return &ConfigError{Field: "Root.Propagation", Err: err}
	}
	if p.Root.Inodes < 0 || p.Root.Inodes > MaxInodes {
		return &ConfigError{Field: "Root.Inodes", Err: fmt.Errorf("must be from 0 to %d, not %d", int64(MaxInodes), p.Root.Inodes)}
	}
	for i := range p.Mounts {
		if err := p.Mounts[i].Validate(); err != nil {
			var fe *ConfigError
			if errors.As(err, &fe) {
				return &ConfigError{Field: fmt.Sprintf("Mounts[%d].%s", i, fe.Field), Err: fe.Err}
			}
			return err
		}
	}
	return nil
}

// Validate checks one entry. Errors are *ConfigError with Field relative to
// the entry ("Target").
func (m *Mount) Validate() error {
	if err := checkTarget(m.Target); err != nil {
		return &ConfigError{Field: "Target", Err: err}
	}
	needSource := m.Kind == Bind || m.Kind == Symlink
	if needSource && m.Source == "" {
		return &ConfigError{Field: "Source", Err: errors.New("must be set")}
	}
	if !needSource && m.Kind != Tmpfs && m.Source != "" {
		return &ConfigError{Field: "Source", Err: fmt.Errorf("must be empty for a %s mount", m.Kind)}
	}
	if strings.IndexByte(m.Source, 0) >= 0 {
		return &ConfigError{Field: "Source", Err: errors.New("must not contain a NUL byte")}
	}
	switch m.Kind {
	case Bind:
		if !path.IsAbs(m.Source) {
			return &ConfigError{Field: "Source", Err: errors.New("must be an absolute path")}
		}
	case Tmpfs:
		if strings.ContainsAny(m.Source, ", \t\n") {
			return &ConfigError{Field: "Source", Err: fmt.Errorf("%q: a tmpfs's source name must hold no comma or space", m.Source)}
		}
		if m.Size <= 0 {
			return &ConfigError{Field: "Size", Err: errors.New("must be positive")}
		}
		if m.Inodes < 0 || m.Inodes > MaxInodes {
			return &ConfigError{Field: "Inodes", Err: fmt.Errorf("must be from 0 to %d, not %d", int64(MaxInodes), m.Inodes)}
		}
	case Devpts:
		if m.Inodes < 0 || m.Inodes > MaxPtys {
			return &ConfigError{Field: "Inodes", Err: fmt.Errorf("must be from 0 to %d ptys, not %d", MaxPtys, m.Inodes)}
		}
	case Node:
		switch m.Mode.Type() {
		case fs.ModeDevice | fs.ModeCharDevice, fs.ModeDevice:
		case fs.ModeNamedPipe:
			if m.Rdev != 0 {
				return &ConfigError{Field: "Rdev", Err: errors.New("must be 0 for a FIFO")}
			}
		default:
			return &ConfigError{Field: "Mode", Err: fmt.Errorf("a node's type must be fs.ModeDevice, with fs.ModeCharDevice for a character device, or fs.ModeNamedPipe, not %v", m.Mode.Type())}
		}
	case Proc, Sysfs, Mqueue, Write, Dir, File, Symlink, Mask, ReadOnly, Cover:
	case "":
		return &ConfigError{Field: "Kind", Err: errors.New("must be set")}
	default:
		return &ConfigError{Field: "Kind", Err: fmt.Errorf("unknown kind %q", m.Kind)}
	}
	if m.Kind != Tmpfs && m.Size != 0 {
		return &ConfigError{Field: "Size", Err: fmt.Errorf("applies to tmpfs mounts only, not %s", m.Kind)}
	}
	if m.Kind != Tmpfs && m.Kind != Devpts && m.Inodes != 0 {
		return &ConfigError{Field: "Inodes", Err: fmt.Errorf("applies to tmpfs and devpts mounts only, not %s", m.Kind)}
	}
	if err := m.Propagation.Validate(); err != nil {
		return &ConfigError{Field: "Propagation", Err: err}
	}
	if !m.Propagation.private() && m.Kind != Bind && m.Kind != Tmpfs {
		return &ConfigError{Field: "Propagation", Err: fmt.Errorf("applies to bind and tmpfs mounts only, not %s", m.Kind)}
	}
	if m.Kind != Bind && m.Device {
		return &ConfigError{Field: "Device", Err: fmt.Errorf("applies to bind mounts only, not %s", m.Kind)}
	}
	if m.Kind != Bind && m.Writable {
		return &ConfigError{Field: "Writable", Err: fmt.Errorf("applies to bind mounts only, not %s", m.Kind)}
	}
	if (m.Owner != nil || m.NoIDMap) && m.Device {
		return &ConfigError{Field: "Owner", Err: errors.New("a bind of device nodes is never idmapped")}
	}
	if m.Owner != nil && !m.Writable {
		return &ConfigError{Field: "Owner", Err: errors.New("applies to writable bind mounts only")}
	}
	if m.Owner != nil && m.NoIDMap {
		return &ConfigError{Field: "Owner", Err: errors.New("needs an idmapping, and NoIDMap is set")}
	}
	if m.NoIDMap && !m.Writable {
		return &ConfigError{Field: "NoIDMap", Err: errors.New("applies to writable bind mounts only")}
	}
	if m.Owner != nil && (m.Owner.UID > maxID || m.Owner.GID > maxID) {
		return &ConfigError{Field: "Owner", Err: fmt.Errorf("ids run from 0 to %d, not %d:%d", int64(maxID), m.Owner.UID, m.Owner.GID)}
	}
	if m.Kind != Node && m.Rdev != 0 {
		return &ConfigError{Field: "Rdev", Err: fmt.Errorf("applies to nodes only, not %s", m.Kind)}
	}
	if m.Kind == Node && m.Mode&^fs.ModePerm&^fs.ModeType != 0 {
		return &ConfigError{Field: "Mode", Err: fmt.Errorf("a node's must hold its type and permission bits only, not %v", m.Mode)}
	}
	if m.Kind != Node && m.Mode&^fs.ModePerm&^(fs.ModeSticky|fs.ModeSetgid) != 0 {
		return &ConfigError{Field: "Mode", Err: fmt.Errorf("must hold permission, sticky and setgid bits only (fs.ModeSticky, not 0o1000), not %#o", uint32(m.Mode))}
	}
	if m.UID < 0 || int64(m.UID) > maxID {
		return &ConfigError{Field: "UID", Err: fmt.Errorf("must be from 0 to %d, not %d", int64(maxID), m.UID)}
	}
	if m.GID < 0 || int64(m.GID) > maxID {
		return &ConfigError{Field: "GID", Err: fmt.Errorf("must be from 0 to %d, not %d", int64(maxID), m.GID)}
	}
	return nil
}

// MaxInodes is the largest inode limit a Tmpfs may have: the kernel takes
// far more on 64-bit machines, but ids past it need tmpfs's inode64 option
// and no sandbox needs them.
const MaxInodes = 1<<32 - 1

// MaxPtys is the most pseudo-terminals a Devpts may be given: the
// kernel's limit of one instance (NR_UNIX98_PTY_MAX, 1<<20 minor numbers).
const MaxPtys = 1 << 20

// maxID is the largest user or group id: (uid_t)-1 means "no id".
const maxID = 1<<32 - 2

// checkTarget accepts absolute, clean paths other than the root itself.
func checkTarget(t string) error {
	switch {
	case t == "":
		return errors.New("must be set")
	case !path.IsAbs(t):
		return errors.New("must be an absolute path")
	case path.Clean(t) != t:
		return fmt.Errorf("must be a clean path (%s)", path.Clean(t))
	case t == "/":
		return errors.New("must not be the root; use the root directory option instead")
	case strings.ContainsRune(t, 0):
		return errors.New("must not contain a NUL byte")
	}
	return nil
}

// lateBinds reports, per entry of p, whether it is a Bind placed after an
// entry that makes a mount of its own (a tmpfs, proc, a mask …). A bind's
// source is cloned before the sandbox makes any mount: by the parent, or
// first thing while the host tree is in view. Since Linux 6.8 a mount
// namespace lists its mounts in the order they were made, not attached,
// so such a bind would show in the mount table ahead of the entries
// before it. It is cloned again where it is placed instead (see
// applier.reclone and compiler.late): the table then lists the plan's
// entries in its order, which a runtime spec's mounts require.
func lateBinds(p *Plan) []bool {
	late := make([]bool, len(p.Mounts))
	made := false
	for i, m := range p.Mounts {
		switch m.Kind {
		case Bind:
			late[i] = made
		case Tmpfs, Proc, Sysfs, Devpts, Mqueue, Mask, Cover, ReadOnly, Node:
			made = true
		}
	}
	return late
}

// nodeName is the name of the node of entry i in MakeNodes' tmpfs.
func nodeName(i int) string { return "n" + strconv.Itoa(i) }
