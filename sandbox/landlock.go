//go:build linux

package sandbox

import (
	"errors"
	"path"
	"strings"

	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/internal/proto"
	"github.com/stockade/stockade/mount"
)

// validateLandlock checks c.Security.Landlock against the sandbox's plan;
// c has its defaults filled in.
func (c *Config) validateLandlock() error {
	l := &c.Security.Landlock
	if l.AnyTCP && (len(l.BindTCP) > 0 || len(l.ConnectTCP) > 0) {
		return configErr("Security.Landlock.BindTCP", "ports mean nothing with AnyTCP, which allows them all")
	}
	if l.Disabled && (l.Strict || l.AnyTCP || len(l.BindTCP) > 0 || len(l.ConnectTCP) > 0 || len(l.WritablePaths) > 0) {
		return configErr("Security.Landlock.Disabled", "contradicts the other Landlock fields that are set")
	}
	p := c.plan()
	for i, w := range l.WritablePaths {
		field := fmtIndex("Security.Landlock.WritablePaths", i)
		if !path.IsAbs(w) || path.Clean(w) != w || strings.IndexByte(w, 0) >= 0 {
			return configErr(field, "must be an absolute, clean path, not %q", w)
		}
		m := mountHolding(&p, w)
		switch {
		case p.Root.Dir == "" && p.Root.Overlay == nil && !inPlan(&p, w):
			return configErr(field, "%s is outside the sandbox's file system: nothing of the sandbox holds it", w)
		case m == nil && !p.Root.Writable, m != nil && !writableMount(m):
			return configErr(field, "%s is inside a read-only part of the sandbox; Landlock can only narrow what the mounts allow", w)
		}
	}
	return nil
}

// mountHolding returns the last entry of p whose mount holds the path
// inside the sandbox (the one on top), or nil when only the root does.
// Entries that mount nothing (files, directories, links) do not count.
func mountHolding(p *mount.Plan, name string) *mount.Mount {
	var found *mount.Mount
	for i := range p.Mounts {
		m := &p.Mounts[i]
		switch m.Kind {
		case mount.Bind, mount.Tmpfs, mount.Proc, mount.Devpts, mount.Sysfs, mount.Mqueue, mount.Mask, mount.ReadOnly:
		default:
			continue
		}
		if name == m.Target || strings.HasPrefix(name, m.Target+"/") {
			found = m
		}
	}
	return found
}

// inPlan reports whether some entry of p, of any kind, is at name or
// holds it.
func inPlan(p *mount.Plan, name string) bool {
	for _, m := range p.Mounts {
		if name == m.Target || strings.HasPrefix(name, m.Target+"/") {
			return true
		}
	}
	return false
}

// writableMount reports whether the sandbox may write in m.
func writableMount(m *mount.Mount) bool {
	return m.Kind == mount.Bind && m.Writable && !m.Device || m.Kind == mount.Tmpfs && !m.ReadOnly || m.Kind == mount.Mqueue
}

// landlockRuleset derives the Landlock domain of the sandbox c describes
// from its plan p: read and execute beneath the root, writes beneath the
// writable mounts (or Landlock.WritablePaths), and the device nodes of
// /dev. It is a pure function of the config; ForABI then fits it to the
// kernel.
func (c *Config) landlockRuleset(p *mount.Plan) *landlock.Ruleset {
	l := &c.Security.Landlock
	r := &landlock.Ruleset{
		HandledFS: landlock.AllFS,
		Scoped:    landlock.ScopeAbstractUnix | landlock.ScopeSignal,
	}
	add := func(name string, access uint64) {
		r.Paths = append(r.Paths, landlock.PathRule{Path: name, Access: access})
	}
	rw := uint64(landlock.Read | landlock.Write)
	if (p.Root.Dir != "" || p.Root.Overlay != nil) && p.Root.Writable && len(l.WritablePaths) == 0 {
		add("/", rw)
	} else {
		add("/", landlock.Read)
	}
	for i := range p.Mounts {
		m := &p.Mounts[i]
		switch {
		case m.Kind == mount.Proc:
			// Files such as /proc/self/oom_score_adj are written; what must
			// not be is a read-only or masked mount anyway.
			add(m.Target, landlock.Read|landlock.WriteFile|landlock.Truncate)
		case m.Kind == mount.Node:
			add(m.Target, landlock.Read|landlock.WriteFile|landlock.Truncate|landlock.IoctlDev)
		case m.Kind == mount.Tmpfs && m.Target == "/dev":
			// The device nodes bound into /dev and the terminals of
			// /dev/pts; the tmpfs itself is read-only.
			add(m.Target, landlock.Read|landlock.WriteFile|landlock.Truncate|landlock.IoctlDev)
		case writableMount(m) && len(l.WritablePaths) == 0:
			add(m.Target, rw)
		}
	}
	for _, w := range l.WritablePaths {
		add(w, rw)
	}
	if !c.tcpUnlimited() {
		r.HandledNet = landlock.BindTCP | landlock.ConnectTCP
		for _, port := range l.BindTCP {
			r.Ports = append(r.Ports, landlock.PortRule{Port: int(port), Access: landlock.BindTCP})
		}
		for _, p := range c.Network.Ports {
			r.Ports = append(r.Ports, landlock.PortRule{Port: int(p.Port), Access: landlock.BindTCP})
		}
		for _, port := range l.ConnectTCP {
			r.Ports = append(r.Ports, landlock.PortRule{Port: int(port), Access: landlock.ConnectTCP})
		}
	}
	return r
}

// landlock puts the sandbox's Landlock domain, fitted to this kernel, in
// spec, and records in conf what it holds and what best effort left out.
func (c *Config) landlock(spec *proto.Spec, conf *Confinement) error {
	l := &c.Security.Landlock
	conf.LandlockABI = landlock.ABI()
	if l.Disabled {
		return nil
	}
	want := c.landlockRuleset(&spec.Plan)
	fitted, notes, ok := want.ForABI(conf.LandlockABI)
	if l.Strict && len(notes) > 0 {
		return &FeatureError{Feature: "Landlock", MinKernel: landlockKernel(*want), Err: errors.New(strings.Join(notes, "; "))}
	}
	conf.Notes = append(conf.Notes, notes...)
	if !ok {
		return nil
	}
	spec.Landlock, spec.LandlockStrict = &fitted, l.Strict
	conf.Landlock = true
	conf.LandlockTCP = fitted.HandledNet != 0
	conf.LandlockScoped = fitted.Scoped != 0
	return nil
}

// tcpUnlimited reports whether Landlock leaves TCP alone: AnyTCP, or a
// network the caller gave the sandbox without naming ports (see
// Landlock.BindTCP).
func (c *Config) tcpUnlimited() bool {
	l := &c.Security.Landlock
	if l.AnyTCP {
		return true
	}
	n := &c.Network
	hasNet := n.ShareHost || n.Link != nil || len(n.Networks) > 0
	return hasNet && len(l.BindTCP) == 0 && len(l.ConnectTCP) == 0
}

// landlockKernels are the Linux releases that brought each Landlock ABI.
var landlockKernels = [...]string{1: "5.13", 2: "5.19", 3: "6.2", 4: "6.7", 5: "6.10", 6: "6.12"}

// landlockKernel returns the first Linux release that enforces every rule
// of r, or "" when none known does.
func landlockKernel(r landlock.Ruleset) string {
	for abi := 1; abi < len(landlockKernels); abi++ {
		if _, notes, _ := r.ForABI(abi); len(notes) == 0 {
			return landlockKernels[abi]
		}
	}
	return ""
}
