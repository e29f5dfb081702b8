//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Delegation is what the caller may do with cgroups under a parent: host
// root may create groups anywhere (unless cgroupfs is read-only), an
// ordinary user only in a subtree that root delegated to it. On cgroup v2
// that is a cgroup it owns, such as the one systemd gives a unit or scope
// with Delegate=yes (systemd-run --user --scope -p Delegate=yes CMD); on
// v1 a directory root created and chowned to it in each hierarchy.
type Delegation struct {
	// Mode is the host's cgroup mode.
	Mode Mode
	// Parent is the parent checked, as Config.Parent.
	Parent string
	// Writable reports whether the caller may create groups under Parent
	// and place its processes in them (on v1, in at least one hierarchy).
	Writable bool
	// Controllers are the controllers that groups under Parent can use and
	// the caller may set, sorted. Limits that need others fail.
	Controllers []string
	// Reason says why Writable is false, or why Controllers lacks a
	// controller the host has, and what would change it. Empty when
	// neither is the case.
	Reason string
}

// CheckDelegation reports what the caller may do under parent (as
// Config.Parent; "" is the default, below the caller's own cgroup). It
// creates nothing. An invalid parent is a *ConfigError.
func CheckDelegation(parent string) (Delegation, error) {
	if err := validateSyntax(Config{Parent: parent}); err != nil {
		return Delegation{}, err
	}
	h, err := probeHost()
	if err != nil {
		return Delegation{}, err
	}
	f, err := hostFacts(parent)
	if err != nil {
		return Delegation{}, err
	}
	return h.delegation(parent, f, canWrite), nil
}

// canWrite reports whether the caller may write to path (a directory: create
// entries in it).
func canWrite(path string) bool {
	return unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS) == nil
}

// delegation works out a Delegation with write as the access check, so
// that tests can make up who may write what.
func (h *host) delegation(parent string, f facts, write func(string) bool) Delegation {
	d := Delegation{Mode: h.mode, Parent: parent}
	switch {
	case h.v2 != nil:
		h.v2Delegation(&d, f, write)
	case h.v1 != nil:
		h.v1Delegation(&d, write)
	default:
		d.Reason = "no cgroup file system is mounted at /sys/fs/cgroup"
	}
	slices.Sort(d.Controllers)
	return d
}

// existing returns dir, or its nearest ancestor that exists, no higher
// than top: where Create would make its first directory.
func existing(dir, top string) string {
	for dir != top && len(dir) > len(top) && !exists(dir) {
		dir = path.Dir(dir)
	}
	return dir
}

func (h *host) v1Delegation(d *Delegation, write func(string) bool) {
	var denied []string
	seen := map[*hierarchy]bool{}
	for _, c := range slices.Sorted(maps.Keys(h.v1)) {
		if c == "devices" && os.Geteuid() != 0 {
			// Device rules need CAP_SYS_ADMIN, whoever owns the files.
			continue
		}
		hier := h.v1[c]
		dir := existing(hier.dir(resolveParent(d.Parent, hier)), hier.mount)
		ok := write(dir)
		if ok {
			d.Controllers = append(d.Controllers, c)
		} else if !seen[hier] {
			denied = append(denied, dir)
		}
		seen[hier] = true
	}
	d.Writable = len(d.Controllers) > 0
	if len(denied) > 0 {
		d.Reason = fmt.Sprintf("uid %d may not create cgroups in %s: no subtree of those hierarchies is delegated to it. "+
			"Have root create and chown one in each hierarchy the limits need "+
			"(mkdir /sys/fs/cgroup/memory/NAME && chown -R %d /sys/fs/cgroup/memory/NAME, and likewise for pids, cpu, cpuacct and freezer), "+
			"then use /NAME as the parent, or run as root",
			os.Geteuid(), strings.Join(denied, ", "), os.Geteuid())
	}
}

func (h *host) v2Delegation(d *Delegation, f facts, write func(string) bool) {
	v2 := h.v2
	parent := resolveParent(d.Parent, v2)
	first := existing(v2.dir(parent), v2.mount)
	// Moving a process into a group needs write access to cgroup.procs of
	// the nearest cgroup that holds both the caller and the group.
	common := commonAncestor(v2.own, parent)
	procs := v2.dir(common) + "/cgroup.procs"
	switch {
	case !write(first):
		d.Reason = fmt.Sprintf("uid %d may not create cgroups in %s: no cgroup there is delegated to it. "+
			"Run the program in a systemd unit or scope with Delegate=yes "+
			"(systemd-run --user --scope -p Delegate=yes PROGRAM), whose cgroup it then owns, or run as root",
			os.Geteuid(), first)
		return
	case !write(procs):
		d.Reason = fmt.Sprintf("uid %d may not move processes between its own cgroup and %s: that needs write access to %s, "+
			"the cgroup that holds both; choose a parent below the delegated cgroup that holds the caller",
			os.Geteuid(), v2.dir(parent), procs)
		return
	}
	d.Writable = true
	// A controller reaches the group if every level from the caller's
	// cgroup (or the root) down to the parent passes it on, or can be made
	// to by the caller.
	for c := range f.controllers {
		if v2PassesOn(v2, parentLevels(parentBase(d.Parent, v2), parent), c, write) {
			d.Controllers = append(d.Controllers, c)
		}
	}
	if f.controllersNote != "" {
		d.Reason = f.controllersNote
	} else if len(d.Controllers) < len(f.controllers) {
		d.Reason = fmt.Sprintf("uid %d may not enable every controller in the cgroups above %s; the cgroup delegated to it passes on only %s",
			os.Geteuid(), v2.dir(parent), strings.Join(d.Controllers, " "))
	}
}

// v2PassesOn reports whether controller c is, or can be, enabled in
// cgroup.subtree_control at every existing level.
func v2PassesOn(v2 *hierarchy, levels []string, c string, write func(string) bool) bool {
	for _, l := range levels {
		dir := v2.dir(l)
		if !exists(dir) {
			return true // Create makes the rest, as the caller
		}
		b, err := readFile(dir + "/cgroup.subtree_control")
		if err != nil {
			return false
		}
		if !slices.Contains(strings.Fields(string(b)), c) && !write(dir+"/cgroup.subtree_control") {
			return false
		}
	}
	return true
}

// commonAncestor returns the deepest cgroup that holds both a and b, paths
// relative to the mount.
func commonAncestor(a, b string) string {
	as := strings.Split(strings.Trim(a, "/"), "/")
	bs := strings.Split(strings.Trim(b, "/"), "/")
	var common string
	for i := 0; i < len(as) && i < len(bs) && as[i] != ""; i++ {
		if as[i] != bs[i] {
			break
		}
		common += "/" + as[i]
	}
	return common
}

// Missing returns the fields of l (as "Limits.Memory") that groups under
// the delegation's parent cannot apply, because the caller may not create
// groups there or their controller is not delegated.
func (d Delegation) Missing(l Limits) []string {
	io := "blkio"
	if d.Mode == Unified {
		io = "io"
	}
	var out []string
	need := func(field, ctrl string, asked bool) {
		if asked && (!d.Writable || !slices.Contains(d.Controllers, ctrl)) {
			out = append(out, field)
		}
	}
	need("Limits.Memory", "memory", l.Memory != 0)
	need("Limits.Swap", "memory", l.Swap != 0)
	need("Limits.CPU", "cpu", l.CPU != 0)
	need("Limits.CPUPeriod", "cpu", l.CPUPeriod != 0)
	need("Limits.CPUWeight", "cpu", l.CPUWeight != 0)
	need("Limits.Pids", "pids", l.Pids != 0)
	need("Limits.CPUs", "cpuset", l.CPUs != "")
	need("Limits.Mems", "cpuset", l.Mems != "")
	need("Limits.IOWeight", io, l.IOWeight != 0)
	need("Limits.Devices", "devices", len(l.Devices) > 0)
	return out
}

// errNotDelegated is the cause of a group that could not be created
// because the caller may write none of the hierarchies.
var errNotDelegated = errors.New("no cgroup hierarchy is delegated to the caller (see CheckDelegation)")

// statsOnly reports whether a v1 group joins controller c only for its
// statistics or Kill, with no limit that needs it; such a hierarchy is
// skipped when the caller may not write it, so that an ordinary user with
// a delegated pids subtree, say, can still limit pids.
func statsOnly(c string, l Limits) bool {
	switch c {
	case "memory":
		return l.Memory == 0 && l.Swap == 0
	case "pids":
		return l.Pids == 0
	case "cpuacct", "freezer":
		return true
	}
	return false
}
