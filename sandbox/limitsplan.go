//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/proto"
)

// How a sandbox's resource limits are applied when the caller may not
// create the cgroup they need, typically an ordinary user on a host that
// delegated no cgroup to it (see cgroup.CheckDelegation).
//
// Limits.validate and newLimiter use it for an ordinary user: a plan error
// is returned before anything is created, the plan's cgroup limits go to
// cgroup.Create (when plan.cgroup is set), its rlimits are appended to the
// spec's Rlimits, and its notes go into Result.Notes, so that a best-effort
// run says what it did not get.

// minDataRlimit is the least RLIMIT_DATA that best effort sets for
// Limits.Memory.
const minDataRlimit = 128 << 20

// limitsPlan is how the limits of one sandbox are applied.
type limitsPlan struct {
	// cgroup says whether to create a cgroup for the sandbox: the caller
	// may, under the parent checked.
	cgroup bool
	// limits are the limits the cgroup applies.
	limits cgroup.Limits
	// rlimits stand in for limits the cgroup cannot apply, with best
	// effort. The init sets them before it starts the command, so they
	// bind the init too.
	rlimits []proto.Rlimit
	// notes say, one per field, what best effort applied instead of a
	// limit, or that it applied nothing.
	notes []string
}

// planLimits decides how to apply l given what the caller may do with
// cgroups (d). When every asked limit can be applied by a cgroup, the
// plan does so. Otherwise, without bestEffort it returns a *FeatureError
// naming the fields and the remedy; with bestEffort the cgroup applies
// what it can, Memory becomes RLIMIT_DATA and Pids RLIMIT_NPROC (both per
// process or user id, not per sandbox), everything else is left out, and
// the notes say so.
func planLimits(l cgroup.Limits, bestEffort bool, d cgroup.Delegation) (limitsPlan, error) {
	missing := d.Missing(l)
	p := limitsPlan{cgroup: d.Writable, limits: l}
	if len(missing) == 0 {
		return p, nil
	}
	if !bestEffort {
		reason := d.Reason
		if reason == "" {
			reason = "the cgroup controllers they need are not available"
		}
		return limitsPlan{}, &FeatureError{
			Feature: "cgroup limits",
			Err: fmt.Errorf("%s cannot be applied: %s; or ask for best effort, which falls back to rlimits where it can",
				strings.Join(missing, ", "), reason),
		}
	}
	for _, field := range missing {
		switch field {
		case "Limits.Memory":
			p.limits.Memory, p.limits.Swap = 0, 0
			// The init stage is bound by it too, and a Go program keeps
			// about 40 MiB of data mappings: below the floor it dies.
			v := uint64(max(l.Memory, minDataRlimit))
			p.rlimits = append(p.rlimits, proto.Rlimit{Resource: unix.RLIMIT_DATA, Cur: v, Max: v})
			p.notes = append(p.notes, fmt.Sprintf("%s: no memory controller to use; each process may instead map at most %d bytes of data (RLIMIT_DATA, at least %d MiB)", field, v, minDataRlimit>>20))
		case "Limits.Swap":
			if !slices.Contains(missing, "Limits.Memory") {
				p.limits.Swap = 0
			}
			p.notes = append(p.notes, field+": no memory controller to use; not applied")
		case "Limits.Pids":
			p.limits.Pids = 0
			v := uint64(l.Pids)
			p.rlimits = append(p.rlimits, proto.Rlimit{Resource: unix.RLIMIT_NPROC, Cur: v, Max: v})
			p.notes = append(p.notes, fmt.Sprintf("%s: no pids controller to use; each user id in the sandbox may instead hold at most %d tasks (RLIMIT_NPROC)", field, v))
		default:
			clearField(&p.limits, field)
			p.notes = append(p.notes, field+": no controller to use; not applied")
		}
	}
	return p, nil
}

// clearField zeroes the field of l named as in Delegation.Missing.
func clearField(l *cgroup.Limits, field string) {
	switch field {
	case "Limits.CPU":
		l.CPU, l.CPUPeriod = 0, 0
	case "Limits.CPUPeriod":
		l.CPUPeriod = 0
	case "Limits.Devices":
		l.Devices = nil
	case "Limits.CPUWeight":
		l.CPUWeight = 0
	case "Limits.CPUs":
		l.CPUs = ""
	case "Limits.Mems":
		l.Mems = ""
	case "Limits.IOWeight":
		l.IOWeight = 0
	}
}

// defaults is how the default caps of a sandbox apply (see Limits).
type defaults struct {
	// inGroup names the fields whose defaults the sandbox's group applies.
	inGroup []string
	// rlimits stand in for the others.
	rlimits []proto.Rlimit
}

// defaultCaps puts the default caps of the zero Pids and Memory of l into
// g, when host root may make a group with the controller each needs,
// and returns the rlimits that stand in for the others.
func defaultCaps(l *Limits, g *cgroup.Config) defaults {
	var d defaults
	root := os.Geteuid() == 0 && cgroup.DetectMode() != cgroup.Unavailable
	try := func(set func(*cgroup.Limits)) bool {
		if !root {
			return false
		}
		t := *g
		set(&t.Limits)
		if t.Validate() != nil {
			return false
		}
		*g = t
		return true
	}
	if l.Pids == 0 {
		switch {
		case try(func(c *cgroup.Limits) { c.Pids = DefaultPids }):
			d.inGroup = append(d.inGroup, "Limits.Pids")
		case l.Rlimits.Processes == 0:
			d.rlimits = append(d.rlimits, proto.Rlimit{Resource: unix.RLIMIT_NPROC, Cur: DefaultPids, Max: DefaultPids})
		}
	}
	if l.Memory == 0 {
		if try(func(c *cgroup.Limits) { c.Memory = DefaultMemory }) {
			d.inGroup = append(d.inGroup, "Limits.Memory")
		} else if l.Rlimits.Data == 0 {
			d.rlimits = append(d.rlimits, proto.Rlimit{Resource: unix.RLIMIT_DATA, Cur: DefaultMemory, Max: DefaultMemory})
		}
	}
	return d
}
