package oci

import (
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stockade/stockade/sandbox"
)

// rlimitInf is RLIM_INFINITY as the spec writes it.
const rlimitInf = math.MaxUint64

// rlimitField names the Rlimits field of each rlimit type the sandbox sets.
var rlimitFields = map[string]string{
	"RLIMIT_NOFILE": "NoFile",
	"RLIMIT_FSIZE":  "FileSize",
	"RLIMIT_STACK":  "Stack",
	"RLIMIT_CORE":   "Core",
	"RLIMIT_AS":     "AddressSpace",
	"RLIMIT_NPROC":  "Processes",
	"RLIMIT_CPU":    "CPU",
	"RLIMIT_DATA":   "Data",
}

func (m *mapper) process() {
	p := m.spec.Process
	if p == nil {
		m.refuse("process", "must be set: the sandbox runs a command")
		return
	}
	if p.Terminal {
		m.cfg.TTY = &sandbox.TTY{}
		if b := p.ConsoleSize; b != nil {
			m.cfg.TTY.Rows, m.cfg.TTY.Cols = uint16(min(b.Height, 0xffff)), uint16(min(b.Width, 0xffff))
		}
		m.from("TTY", "process.terminal")
	}
	if p.CommandLine != "" {
		m.refuse("process.commandLine", "is for Windows; use process.args")
	}
	if len(p.Args) == 0 {
		m.refuse("process.args", "must name the command")
	}
	m.cfg.Args = slices.Clone(p.Args)
	m.from("Args", "process.args")
	// An empty env means an empty environment, never the sandbox's default.
	m.cfg.Env = append([]string{}, p.Env...)
	m.from("Env", "process.env")

	switch {
	case !path.IsAbs(p.Cwd) || path.Clean(p.Cwd) != p.Cwd:
		m.refuse("process.cwd", "must be an absolute, clean path, not %q", p.Cwd)
	default:
		m.cfg.Dir = p.Cwd
	}
	m.from("Dir", "process.cwd")

	m.user(&p.User)
	m.capabilities(p)
	m.rlimits(p.Rlimits)

	if p.OOMScoreAdj != nil {
		m.cfg.Limits.OOMScoreAdj = *p.OOMScoreAdj
		m.from("Limits.OOMScoreAdj", "process.oomScoreAdj")
	}
	m.cfg.Security.AllowNewPrivileges = !p.NoNewPrivileges
	m.from("Security.AllowNewPrivileges", "process.noNewPrivileges")
	if p.Scheduler != nil {
		m.refuse("process.scheduler", "the sandbox does not set a scheduling policy")
	}
	if p.IOPriority != nil {
		m.refuse("process.ioPriority", "the sandbox does not set an I/O priority")
	}
	if p.ExecCPUAffinity != nil {
		m.refuse("process.execCPUAffinity", "the sandbox does not set a CPU affinity per process; use linux.resources.cpu.cpus")
	}
	// ApparmorProfile, SelinuxLabel and ConsoleSize are ignored: see the
	// package documentation.
}

func (m *mapper) user(u *specs.User) {
	switch {
	case u.UID == 0 && u.GID == 0:
		m.cfg.RunAsRoot = true
	case u.UID == 0:
		m.refuse("process.user.gid", "a command running as uid 0 runs with gid 0 in the sandbox, not %d", u.GID)
	case u.GID == 0:
		m.refuse("process.user.gid", "a command not running as root cannot run with gid 0 in the sandbox")
	default:
		m.cfg.UID, m.cfg.GID = int(u.UID), int(u.GID)
	}
	m.from("UID", "process.user")
	m.from("GID", "process.user")
	m.from("RunAsRoot", "process.user")
	if u.Umask != nil {
		if *u.Umask > 0o777 {
			m.refuse("process.user.umask", "%#o has bits beyond 0777", *u.Umask)
		} else {
			mask := fs.FileMode(*u.Umask)
			m.cfg.Umask = &mask
		}
	}
	m.from("Umask", "process.user.umask")
	for _, g := range u.AdditionalGids {
		m.cfg.Groups = append(m.cfg.Groups, int(g))
	}
	m.from("Groups", "process.user.additionalGids")
	if u.Username != "" {
		m.refuse("process.user.username", "is for Windows; use uid and gid")
	}
}

// capabilities maps the spec's capability sets onto Security.Capabilities,
// which the sandbox keeps in the bounding, permitted and effective sets,
// and, for a command that is not root, in the ambient and inheritable sets
// as well. Sets that differ in any other way are refused.
func (m *mapper) capabilities(p *specs.Process) {
	c := p.Capabilities
	if c == nil {
		return // none, as the sandbox keeps none by default
	}
	const base = "process.capabilities"
	caps := c.Bounding
	for _, s := range []struct {
		name string
		set  []string
	}{{"effective", c.Effective}, {"permitted", c.Permitted}} {
		if !sameSet(caps, s.set) {
			m.refuse(base+"."+s.name, "the sandbox keeps one set of capabilities in its bounding, permitted and effective sets; this set differs from bounding")
		}
	}
	root := p.User.UID == 0
	for _, s := range []struct {
		name string
		set  []string
	}{{"inheritable", c.Inheritable}, {"ambient", c.Ambient}} {
		switch {
		case len(s.set) == 0 && (root || len(caps) == 0 || s.name == "inheritable"):
			// Root needs neither set to keep its capabilities across
			// execve; the sandbox fills them in for other users.
		case sameSet(caps, s.set):
		case len(s.set) == 0:
			m.refuse(base+"."+s.name, "a command that is not root keeps its capabilities in the sandbox (as ambient ones); list them here too, or drop them")
		default:
			m.refuse(base+"."+s.name, "must be empty or the same as bounding")
		}
	}
	if len(caps) > 0 {
		m.cfg.Security.Capabilities = slices.Clone(caps)
	}
	m.from("Security.Capabilities", base+".bounding")
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func (m *mapper) rlimits(list []specs.POSIXRlimit) {
	seen := map[string]bool{}
	for i, r := range list {
		p := fmt.Sprintf("process.rlimits[%d]", i)
		name, ok := rlimitFields[r.Type]
		switch {
		case !ok:
			m.refuse(p+".type", "the sandbox does not set %s; it sets %s", r.Type, rlimitNames())
			continue
		case seen[r.Type]:
			m.refuse(p+".type", "%s is set twice", r.Type)
			continue
		case r.Soft > r.Hard:
			m.refuse(p+".soft", "the soft limit %d is above the hard limit %d", r.Soft, r.Hard)
			continue
		}
		seen[r.Type] = true
		m.from("Limits.Rlimits."+name, p)
		v, ok := m.rlimitValue(p+".hard", r.Type, name, r.Hard)
		if !ok {
			continue
		}
		if r.Soft != r.Hard {
			m.from("Limits.SoftRlimits."+name, p+".soft")
			soft, ok := m.rlimitValue(p+".soft", r.Type, name, r.Soft)
			if !ok {
				continue
			}
			m.setRlimit(&m.cfg.Limits.SoftRlimits, p+".soft", name, soft)
		}
		m.setRlimit(&m.cfg.Limits.Rlimits, p+".hard", name, v)
	}
}

// rlimitValue converts a spec's limit to an Rlimits field's value.
func (m *mapper) rlimitValue(p, typ, name string, u uint64) (int64, bool) {
	v := int64(sandbox.Unlimited)
	if u != rlimitInf {
		if u > math.MaxInt64 {
			m.refuse(p, "%d is out of range", u)
			return 0, false
		}
		v = int64(u)
	}
	if v == 0 && name != "Core" {
		m.refuse(p, "the sandbox cannot set %s to 0 (zero leaves the limit as the caller has it)", typ)
		return 0, false
	}
	return v, true
}

// setRlimit sets the field name of l to v.
func (m *mapper) setRlimit(l *sandbox.Rlimits, p, name string, v int64) {
	switch name {
	case "NoFile":
		l.NoFile = v
	case "FileSize":
		l.FileSize = v
	case "Stack":
		l.Stack = v
	case "Core":
		l.Core = v
	case "AddressSpace":
		l.AddressSpace = v
	case "Processes":
		l.Processes = v
	case "CPU":
		if v == sandbox.Unlimited || v > math.MaxInt64/int64(time.Second) {
			m.refuse(p, "the sandbox cannot remove the CPU time limit or set it so high; leave RLIMIT_CPU out")
			return
		}
		l.CPU = time.Duration(v) * time.Second
	case "Data":
		l.Data = v
	}
}

func rlimitNames() string {
	names := make([]string, 0, len(rlimitFields))
	for n := range rlimitFields {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprint(names)
}
