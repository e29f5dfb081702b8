package oci

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompActions are the actions the sandbox's filter has.
var seccompActions = map[specs.LinuxSeccompAction]bool{
	specs.ActAllow: true, specs.ActErrno: true, specs.ActKillProcess: true, specs.ActLog: true,
}

// seccompOps are the comparisons it has.
var seccompOps = map[specs.LinuxSeccompOperator]bool{
	specs.OpEqualTo: true, specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true,
	specs.OpGreaterThan: true, specs.OpGreaterEqual: true, specs.OpMaskedEqual: true,
}

// seccomp checks linux.seccomp against what the sandbox's filter can do,
// naming the spec's fields, and sets it as Security.Seccomp, whose form it
// has. Without linux.seccomp the sandbox's default policy
// applies; a policy that allows every call with no rule is
// SeccompUnconfined.
func (m *mapper) seccomp(s *specs.LinuxSeccomp) {
	if s == nil {
		return
	}
	const base = "linux.seccomp"
	n := len(m.errs)
	if s.DefaultAction == specs.ActAllow && len(s.Syscalls) == 0 && s.DefaultErrnoRet == nil &&
		len(s.Flags) == 0 && s.ListenerPath == "" {
		m.cfg.Security.SeccompUnconfined = true
		return
	}
	m.seccompAction(base+".defaultAction", base+".defaultErrnoRet", s.DefaultAction, s.DefaultErrnoRet)
	// Architectures are ignored: see the package documentation.
	for i, f := range s.Flags {
		if f != "SECCOMP_FILTER_FLAG_TSYNC" {
			m.refuse(fmt.Sprintf("%s.flags[%d]", base, i), "the sandbox sets no seccomp flag but TSYNC, not %s", f)
		}
	}
	if s.ListenerPath != "" {
		m.refuse(base+".listenerPath", "the sandbox has no seccomp notify listener")
	}
	if s.ListenerMetadata != "" {
		m.refuse(base+".listenerMetadata", "the sandbox has no seccomp notify listener")
	}
	for i, sc := range s.Syscalls {
		p := fmt.Sprintf("%s.syscalls[%d]", base, i)
		m.seccompAction(p+".action", p+".errnoRet", sc.Action, sc.ErrnoRet)
		for j, a := range sc.Args {
			ap := fmt.Sprintf("%s.args[%d]", p, j)
			if !seccompOps[a.Op] {
				m.refuse(ap+".op", "unknown comparison %q", a.Op)
				continue
			}
			if a.Index > 5 {
				m.refuse(ap+".index", "must be from 0 to 5, not %d", a.Index)
				continue
			}
			if a.Op != specs.OpMaskedEqual && a.ValueTwo != 0 {
				m.refuse(ap+".valueTwo", "is only meaningful with SCMP_CMP_MASKED_EQ")
			}
		}
	}
	if len(m.errs) == n {
		pol := *s
		// Architectures are ignored: see the package documentation.
		pol.Architectures = nil
		m.cfg.Security.Seccomp = &pol
		m.from("Security.Seccomp", base)
	}
}

func (m *mapper) seccompAction(p, errnoPath string, a specs.LinuxSeccompAction, errnoRet *uint) {
	switch {
	case seccompActions[a]:
	case a == specs.ActKill || a == specs.ActKillThread:
		m.refuse(p, "the sandbox's filter kills the whole process, never one thread; use SCMP_ACT_KILL_PROCESS")
		return
	default:
		m.refuse(p, "the sandbox's filter allows, fails with an errno, kills the process or logs; %q is none of these", a)
		return
	}
	switch {
	case errnoRet == nil:
	case a != specs.ActErrno:
		m.refuse(errnoPath, "is only meaningful with SCMP_ACT_ERRNO")
	case *errnoRet == 0 || *errnoRet > 4095:
		m.refuse(errnoPath, "must be from 1 to 4095, not %d", *errnoRet)
	}
}
