//go:build linux

package sandbox

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/mount"
)

// Paths of /proc that are hidden or made read-only in every sandbox: they
// expose the host kernel's memory, keys, timers and hardware, or let a
// process change kernel settings. The kernel command line, its build
// configuration and the boot id are hidden too: they name the host and
// its boot, which lets sandboxes of one host recognise each other, and
// the command line may hold secrets. A masked file reads empty. What
// /proc still tells of the host is in the README ("What a sandbox can
// still learn").
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/kallsyms", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi",
		"/proc/cmdline", "/proc/config.gz",
	}
	// sysctlMaskedPaths are masked once /proc/sys is read-only: that
	// remount's nodev, applied to the mounts beneath, would make the
	// /dev/null over them fail to open.
	sysctlMaskedPaths = []string{"/proc/sys/kernel/random/boot_id"}
	readOnlyPaths     = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
	// sysMaskedPaths are hidden in a /sys asked for with Security.Sysfs.
	sysMaskedPaths = []string{"/sys/firmware", "/sys/devices/virtual/powercap"}
	// devices are the host device nodes bound into the sandbox's /dev.
	devices = []string{"null", "zero", "full", "random", "urandom", "tty"}
)

// plan returns the root file system of the sandbox c describes; c has its
// defaults filled in.
func (c *Config) plan() mount.Plan {
	var p mount.Plan
	add := func(ms ...mount.Mount) { p.Mounts = append(p.Mounts, ms...) }
	if c.Overlay != nil {
		// The sandbox's own upper layer makes it writable; the rest of the
		// overlay is the owner's to fill in (see overlayUpper.patch).
		p.Root = mount.Root{Writable: true, Overlay: &mount.Overlay{Lower: slices.Clone(c.Overlay.Layers)}}
	} else if c.RootDir != "" {
		p.Root = mount.Root{Dir: c.RootDir, Writable: c.WritableRoot}
	} else {
		// The root holds only mount points and /etc; it is read-only once
		// built.
		p.Root = mount.Root{Size: 1 << 20, Inodes: 1024}
		add(mount.HostSystem()...)
		add(c.etcFiles()...)
	}
	p.Root.Propagation = mount.Propagation(c.RootPropagation)

	add(mount.Mount{Kind: mount.Proc, Target: "/proc"})
	// Settings first, while /proc/sys is still writable.
	paths, values := c.sysctlPaths()
	for i, p := range paths {
		add(mount.Mount{Kind: mount.Write, Target: p, Data: []byte(values[i])})
	}
	for _, m := range maskedPaths {
		add(mount.Mount{Kind: mount.Mask, Target: m})
	}
	for _, m := range readOnlyPaths {
		add(mount.Mount{Kind: mount.ReadOnly, Target: m})
	}
	for _, m := range sysctlMaskedPaths {
		add(mount.Mount{Kind: mount.Mask, Target: m})
	}

	// /dev/shm shows the source "shm" in the mount table, as in runc and
	// Docker.
	shm := c.tmpfs("/dev/shm", fs.ModeSticky|0o777, 0, 0)
	shm.Source = "shm"
	add(mount.Mount{Kind: mount.Tmpfs, Target: "/dev", Size: 64 << 10, Inodes: 64, Mode: 0o755, ReadOnly: true})
	for _, d := range devices {
		add(mount.Mount{Kind: mount.Bind, Source: "/dev/" + d, Target: "/dev/" + d, Writable: true, Device: true})
	}
	add(
		mount.Mount{Kind: mount.Devpts, Target: "/dev/pts", Inodes: c.Ptys},
		mount.Mount{Kind: mount.Symlink, Source: "pts/ptmx", Target: "/dev/ptmx"},
		shm,
	)
	if c.Mqueue {
		add(mount.Mount{Kind: mount.Mqueue, Target: "/dev/mqueue"})
	}
	add(
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd", Target: "/dev/fd"},
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd/0", Target: "/dev/stdin"},
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd/1", Target: "/dev/stdout"},
		mount.Mount{Kind: mount.Symlink, Source: "/proc/self/fd/2", Target: "/dev/stderr"},
	)
	// /sys after /dev, in the order of the mounts of runc's and crun's
	// default spec (a spec's mounts are placed in the order listed).
	if c.Security.Sysfs {
		add(mount.Mount{Kind: mount.Sysfs, Target: "/sys"})
		for _, m := range sysMaskedPaths {
			add(mount.Mount{Kind: mount.Mask, Target: m})
		}
	}
	add(c.tmpfs("/tmp", fs.ModeSticky|0o777, 0, 0))
	// An overlay root is writable: its working directory is the image's
	// own (a tmpfs would hide what the image holds there).
	if c.Dir != "/" && c.Overlay == nil && !c.mountsTarget(c.Dir) {
		add(c.tmpfs(c.Dir, 0o755, c.UID, c.GID))
	}
	for _, m := range c.Mounts {
		add(c.planMount(m))
	}
	return p
}

// validateSymlinks checks the Symlink entries of c.Mounts against the root
// file system c makes. A link is made in memory of the sandbox's own, a
// tmpfs, never in a host directory (RootDir, a Bind's source) nor in a
// kernel file system; and it replaces nothing: no other entry has its
// target or one beneath it, and no later mount goes over it.
func (c *Config) validateSymlinks() error {
	first := -1
	for i := range c.Mounts {
		if c.Mounts[i].Kind == Symlink {
			first = i
			break
		}
	}
	if first < 0 {
		return nil
	}
	d := c.withDefaults()
	p := d.plan()
	base := len(p.Mounts) - len(c.Mounts) // where c.Mounts start in p
	for i := first; i < len(c.Mounts); i++ {
		m := &c.Mounts[i]
		if m.Kind != Symlink {
			continue
		}
		field := fmtIndex("Mounts", i)
		if len(m.Source) >= unix.PathMax {
			return configErr(field+".Source", "a link's text must be shorter than %d bytes", unix.PathMax)
		}
		if m.Target == d.Dir {
			return configErr(field+".Target", "is the working directory (Dir): a link would replace it")
		}
		var holder *mount.Mount // the deepest mount it is made in
		for j := range p.Mounts {
			e := &p.Mounts[j]
			if j == base+i {
				continue
			}
			if e.Target == m.Target || strings.HasPrefix(e.Target, m.Target+"/") && j < base+i {
				return configErr(field+".Target", "%s is where the sandbox places a %s entry (%s): a link would replace it", m.Target, e.Kind, e.Target)
			}
			if strings.HasPrefix(e.Target, m.Target+"/") {
				return configErr(field+".Target", "the later %s entry at %s would be placed beneath the link", e.Kind, e.Target)
			}
			if !strings.HasPrefix(m.Target, e.Target+"/") {
				continue
			}
			if e.Kind == mount.Symlink {
				return configErr(field+".Target", "is beneath the link at %s: give the path it resolves to", e.Target)
			}
			if !makesMount(e.Kind) {
				continue
			}
			if j > base+i {
				return configErr(field+".Target", "the %s mount at %s, placed after it, would hide it", e.Kind, e.Target)
			}
			if holder == nil || len(e.Target) >= len(holder.Target) {
				holder = e
			}
		}
		switch {
		case holder == nil && c.RootDir != "":
			return configErr(field+".Target", "is in RootDir, a host directory: a link is made only in a tmpfs of the sandbox (/tmp, the working directory, a Tmpfs entry)")
		case holder != nil && holder.Kind != mount.Tmpfs:
			return configErr(field+".Target", "is inside the %s mount at %s: a link is made only in a tmpfs of the sandbox (/tmp, the working directory, a Tmpfs entry, the generated root)", holder.Kind, holder.Target)
		}
	}
	return nil
}

// makesMount reports whether entries of kind k mount a file system at
// their target.
func makesMount(k mount.Kind) bool {
	switch k {
	case mount.Bind, mount.Tmpfs, mount.Proc, mount.Sysfs, mount.Devpts:
		return true
	}
	return false
}

func (c *Config) tmpfs(target string, mode fs.FileMode, uid, gid int) mount.Mount {
	return mount.Mount{
		Kind: mount.Tmpfs, Target: target, Size: c.TmpfsSize, Inodes: c.TmpfsInodes,
		Mode: mode, UID: uid, GID: gid,
	}
}

func (c *Config) mountsTarget(target string) bool {
	for _, m := range c.Mounts {
		if m.Target == target {
			return true
		}
	}
	return false
}

// etcFiles generates a minimal /etc: the users and groups the sandbox knows,
// the host names it can resolve, and how to look them up.
func (c *Config) etcFiles() []mount.Mount {
	var passwd, group strings.Builder
	passwd.WriteString("root:x:0:0:root:/root:/bin/sh\n")
	group.WriteString("root:x:0:\n")
	if !c.RunAsRoot {
		fmt.Fprintf(&passwd, "sandbox:x:%d:%d:sandbox:%s:/bin/sh\n", c.UID, c.GID, c.Dir)
		fmt.Fprintf(&group, "sandbox:x:%d:\n", c.GID)
	}
	passwd.WriteString("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	group.WriteString("nogroup:x:65534:\n")
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", c.Hostname)
	file := func(name, data string) mount.Mount {
		return mount.Mount{Kind: mount.File, Target: "/etc/" + name, Data: []byte(data), Mode: 0o644}
	}
	return []mount.Mount{
		{Kind: mount.Dir, Target: "/etc", Mode: 0o755},
		file("passwd", passwd.String()),
		file("group", group.String()),
		file("hosts", hosts),
		file("hostname", c.Hostname+"\n"),
		file("nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"),
	}
}

// givenRoot reports whether the root is the caller's (RootDir or
// Overlay) rather than the default view of the host.
func (c *Config) givenRoot() bool { return c.RootDir != "" || c.Overlay != nil }
