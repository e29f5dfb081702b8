package oci

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stockade/stockade/mount"
	"github.com/stockade/stockade/sandbox"
)

// The sandbox's own mounts that a spec's entries may stand for: the
// sandbox always mounts them (but /sys), whatever the spec says, with its
// own options.
var ownMounts = map[string]string{
	"/proc":    "proc",
	"/dev":     "tmpfs",
	"/dev/pts": "devpts",
	"/dev/shm": "tmpfs",
	"/sys":     "sysfs",
}

// ignoredMounts are file systems the sandbox does not mount, which a spec
// may ask for and lose nothing a command depends on; see the package
// documentation.
var ignoredMounts = map[string]string{
	"/sys/fs/cgroup": "cgroup",
}

// The paths the sandbox masks or makes read-only whatever the spec says;
// kept in step with sandbox/plan.go.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/kallsyms", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi",
	}
	readOnlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
	sysMaskedPaths = []string{"/sys/firmware", "/sys/devices/virtual/powercap"}
)

func (m *mapper) mounts() {
	for i, sm := range m.spec.Mounts {
		p := fmt.Sprintf("mounts[%d]", i)
		dest := sm.Destination
		if !path.IsAbs(dest) || path.Clean(dest) != dest {
			m.refuse(p+".destination", "must be an absolute, clean path, not %q", dest)
			continue
		}
		if len(sm.UIDMappings) > 0 || len(sm.GIDMappings) > 0 {
			m.refuse(p+".uidMappings", "the sandbox makes no id-mapped mounts")
			continue
		}
		bind := sm.Type == "bind" || slices.Contains(sm.Options, "bind") || slices.Contains(sm.Options, "rbind")
		typ := sm.Type
		if bind {
			typ = "bind"
		}
		if want, ok := ignoredMounts[dest]; ok && typ == want {
			continue
		}
		if dest == "/sys" && (typ == "sysfs" || typ == "bind" && path.Clean(sm.Source) == "/sys") {
			m.sysfs(p, sm)
			continue
		}
		if dest == "/dev/mqueue" && typ == "mqueue" {
			// Always nosuid, nodev and noexec, as the spec's usually are.
			m.cfg.Mqueue = true
			m.from("Mqueue", p)
			m.mountAt = append(m.mountAt, mountOrigin{dest: dest, config: -1, spec: sm})
			continue
		}
		if want := ownMounts[dest]; want != "" && typ == want {
			m.mountAt = append(m.mountAt, mountOrigin{dest: dest, config: -1, spec: sm})
			continue
		}
		var mt sandbox.Mount
		var ok bool
		switch typ {
		case "bind":
			mt, ok = m.bindMount(p, sm)
		case "tmpfs":
			mt, ok = m.tmpfsMount(p, sm)
		default:
			m.refuse(p+".type", "the sandbox mounts binds and tmpfs; %q is not one of them", sm.Type)
		}
		if !ok {
			continue
		}
		m.from(fmt.Sprintf("Mounts[%d]", len(m.cfg.Mounts)), p)
		m.mountAt = append(m.mountAt, mountOrigin{dest: dest, config: len(m.cfg.Mounts), spec: sm})
		m.cfg.Mounts = append(m.cfg.Mounts, mt)
	}
}

// sysfs maps a /sys entry to Security.Sysfs: a fresh, read-only sysfs of
// the sandbox's network namespace, with firmware and powercap masked.
func (m *mapper) sysfs(p string, sm specs.Mount) {
	if m.cfg.Network.ShareHost {
		m.refuse(p, "the sandbox's /sys is a sysfs of its own network namespace, and the spec has none (linux.namespaces lists no network namespace); remove this mount, or add a network namespace")
		return
	}
	if !slices.Contains(sm.Options, "ro") {
		m.refuse(p+".options", "the sandbox's /sys is read-only; add \"ro\"")
		return
	}
	m.cfg.Security.Sysfs = true
	m.from("Security.Sysfs", p)
	m.mountAt = append(m.mountAt, mountOrigin{dest: "/sys", config: -1, spec: sm})
}

// propagation maps a propagation of a spec (linux.rootfsPropagation, a
// mount option) to the sandbox's, and reports whether it is one. The r-
// forms are the plain ones: the sandbox sets a propagation on a mount's
// own mount alone. A slave is private: the sandbox takes no mount events
// from the host (see the package documentation).
func propagation(opt string) (mount.Propagation, bool) {
	switch opt {
	case "", "private", "rprivate", "slave", "rslave":
		return mount.Private, true
	case "shared", "rshared":
		return mount.Shared, true
	case "unbindable", "runbindable":
		return mount.Unbindable, true
	}
	return "", false
}

// commonOption handles the options that binds and tmpfs share: it reports
// whether opt is one of them, and refuses it when the sandbox cannot
// honour it. A propagation option sets *prop; the last one counts.
func (m *mapper) commonOption(p, opt string, writable *bool, prop *mount.Propagation) bool {
	if pr, ok := propagation(opt); ok && opt != "" {
		*prop = pr
		return true
	}
	switch opt {
	case "ro", "rdonly":
		*writable = false
	case "rw":
		*writable = true
	case "nosuid", "nodev", "exec", "defaults":
		// The sandbox's binds and tmpfs are always nosuid and nodev.
	case "relatime", "norelatime", "noatime", "atime", "strictatime", "nostrictatime",
		"diratime", "nodiratime", "lazytime", "nolazytime":
		// Access times are the host's business; they change nothing the
		// sandbox guards.
	case "noexec":
		m.refuse(p, "the sandbox's binds and tmpfs allow exec; it cannot mount them noexec")
	case "suid", "dev":
		m.refuse(p, "the sandbox's binds and tmpfs are always nosuid and nodev")
	default:
		return false
	}
	return true
}

func (m *mapper) bindMount(p string, sm specs.Mount) (sandbox.Mount, bool) {
	src := sm.Source
	if src == "" {
		m.refuse(p+".source", "a bind needs a source")
		return sandbox.Mount{}, false
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(m.bundle, src)
	}
	if abs, err := filepath.Abs(src); err == nil {
		src = abs
	}
	writable := true // a spec's bind is read-write unless it says ro
	var prop mount.Propagation
	n := len(m.errs)
	for j, opt := range sm.Options {
		op := fmt.Sprintf("%s.options[%d]", p, j)
		switch key, _, _ := strings.Cut(opt, "="); {
		case opt == "bind" || opt == "rbind":
			// The sandbox's binds are always recursive.
		case m.commonOption(op, opt, &writable, &prop):
		case strings.Contains(opt, "=") && slices.Contains(tmpfsData, key):
			// A tmpfs's options mean nothing to a bind: mount(2) takes
			// no data for one (runc and crun pass them, and the kernel
			// ignores them).
		default:
			m.refuse(op, "the sandbox does not know the bind option %q", opt)
		}
	}
	return sandbox.Mount{Kind: sandbox.Bind, Source: src, Target: sm.Destination, Writable: writable, Propagation: string(prop)}, len(m.errs) == n
}

// tmpfsData are the keys of the tmpfs options that a tmpfs Mount maps.
var tmpfsData = []string{"size", "nr_inodes", "mode", "uid", "gid"}

func (m *mapper) tmpfsMount(p string, sm specs.Mount) (sandbox.Mount, bool) {
	mt := sandbox.Mount{Kind: sandbox.Tmpfs, Target: sm.Destination, Size: sandbox.DefaultTmpfsSize, Mode: 0o755}
	writable := true
	var prop mount.Propagation
	n := len(m.errs)
	if sm.Source != "tmpfs" {
		// The name the mount table shows; "tmpfs" is the default.
		mt.Source = sm.Source
	}
	for j, opt := range sm.Options {
		op := fmt.Sprintf("%s.options[%d]", p, j)
		if m.commonOption(op, opt, &writable, &prop) {
			continue
		}
		key, val, _ := strings.Cut(opt, "=")
		var err error
		switch key {
		case "size":
			mt.Size, err = parseSize(val)
		case "nr_inodes":
			mt.Inodes, err = parseSize(val)
		case "mode":
			var v uint64
			v, err = strconv.ParseUint(val, 8, 32)
			if err == nil && v > 0o7777 {
				err = fmt.Errorf("mode %s has bits beyond 07777", val)
			}
			mt.Mode = fileMode(v)
		case "uid":
			mt.UID, err = strconv.Atoi(val)
		case "gid":
			mt.GID, err = strconv.Atoi(val)
		default:
			m.refuse(op, "the sandbox does not know the tmpfs option %q", opt)
			continue
		}
		if err != nil {
			m.refuse(op, "%v", err)
		}
	}
	mt.ReadOnly = !writable
	mt.Propagation = string(prop)
	return mt, len(m.errs) == n
}

// fileMode converts Unix permission bits (with setuid, setgid and sticky)
// to an fs.FileMode.
func fileMode(v uint64) fs.FileMode {
	mode := fs.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if v&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if v&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// unixMode is the inverse of fileMode.
func unixMode(mode fs.FileMode) uint64 {
	v := uint64(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// parseSize reads a tmpfs size: a number of bytes with an optional k, m or
// g suffix. Sizes relative to memory (a % suffix) are refused: the
// sandbox's tmpfs have a size in bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size in bytes (with k, m or g)", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// paths checks linux.maskedPaths and linux.readonlyPaths against what the
// sandbox masks and makes read-only in any case.
func (m *mapper) paths(l *specs.Linux) {
	masked := func(p string) bool {
		if slices.Contains(maskedPaths, p) {
			return true
		}
		if p == "/sys" || strings.HasPrefix(p, "/sys/") {
			// Without Security.Sysfs there is no /sys at all.
			return !m.cfg.Security.Sysfs || slices.Contains(sysMaskedPaths, p)
		}
		return false
	}
	// Any other path becomes a Mask or ReadOnly entry of Config.Mounts,
	// placed after the spec's mounts, as runc places them.
	add := func(p, sp string, kind sandbox.MountKind) {
		if !path.IsAbs(p) || path.Clean(p) != p {
			m.refuse(sp, "must be an absolute, clean path, not %q", p)
			return
		}
		m.from(fmt.Sprintf("Mounts[%d]", len(m.cfg.Mounts)), sp)
		m.cfg.Mounts = append(m.cfg.Mounts, sandbox.Mount{Kind: kind, Target: p})
	}
	for i, p := range l.MaskedPaths {
		if !masked(p) {
			add(p, fmt.Sprintf("linux.maskedPaths[%d]", i), sandbox.Mask)
		}
	}
	for i, p := range l.ReadonlyPaths {
		// A masked path cannot be written either; /sys is read-only.
		if !slices.Contains(readOnlyPaths, p) && !masked(p) && p != "/sys" && !strings.HasPrefix(p, "/sys/") {
			add(p, fmt.Sprintf("linux.readonlyPaths[%d]", i), sandbox.ReadOnlyPath)
		}
	}
}

// workDir makes sure the working directory keeps what the spec puts
// there. The sandbox mounts a fresh tmpfs on Config.Dir unless a mount
// targets it; in a spec, the working directory is a directory of the root
// file system (or of a mount). So unless a spec mount targets it, the
// directory is bound onto itself from where its content comes from: the
// root file system, or the bind that holds it. Below a tmpfs (the
// sandbox's /tmp or /dev/shm, or a spec's), the fresh tmpfs the sandbox
// would mount there anyway is made explicit. The root needs nothing: the
// sandbox mounts no tmpfs there.
func (m *mapper) workDir() {
	dir := m.cfg.Dir
	if dir == "" || dir == "/" || m.cfg.RootDir == "" {
		return
	}
	// The last mount at or above dir decides where its content lives.
	var parent *mountOrigin
	for i := range m.mountAt {
		mo := &m.mountAt[i]
		if mo.dest == dir || strings.HasPrefix(dir, strings.TrimSuffix(mo.dest, "/")+"/") {
			parent = mo
		}
	}
	if parent == nil && (strings.HasPrefix(dir, "/tmp/") || dir == "/tmp") {
		parent = &mountOrigin{dest: "/tmp", config: -1}
	}
	if parent != nil && parent.dest == dir && parent.config >= 0 {
		return // the spec mounts it
	}
	writable := m.cfg.WritableRoot
	src := filepath.Join(m.cfg.RootDir, dir)
	at := 0 // before every spec mount, which all lie below dir or beside it
	if parent != nil {
		at = parent.config + 1
		if parent.config < 0 || m.cfg.Mounts[parent.config].Kind != sandbox.Bind {
			m.addMount(at, sandbox.Mount{
				Kind: sandbox.Tmpfs, Target: dir, Size: sandbox.DefaultTmpfsSize, Inodes: sandbox.DefaultTmpfsInodes,
				Mode: 0o755, UID: m.cfg.UID, GID: m.cfg.GID,
			})
			return
		}
		pm := m.cfg.Mounts[parent.config]
		src = filepath.Join(pm.Source, strings.TrimPrefix(dir, strings.TrimSuffix(parent.dest, "/")))
		writable = pm.Writable
	}
	m.addMount(at, sandbox.Mount{Kind: sandbox.Bind, Source: src, Target: dir, Writable: writable})
}

// addMount inserts mt into Config.Mounts at index at, on behalf of
// process.cwd.
func (m *mapper) addMount(at int, mt sandbox.Mount) {
	m.cfg.Mounts = slices.Insert(m.cfg.Mounts, at, mt)
	for i := range m.origins {
		o := &m.origins[i]
		var k int
		if _, err := fmt.Sscanf(o.field, "Mounts[%d]", &k); err == nil && k >= at {
			o.field = fmt.Sprintf("Mounts[%d]", k+1)
		}
	}
	m.from(fmt.Sprintf("Mounts[%d]", at), "process.cwd")
}
