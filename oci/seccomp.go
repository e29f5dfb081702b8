package oci

import (
	"fmt"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stockade/stockade/sandbox"
)

var seccompActions = map[specs.LinuxSeccompAction]sandbox.SeccompAction{
	specs.ActAllow:       sandbox.SeccompAllow,
	specs.ActErrno:       sandbox.SeccompErrno,
	specs.ActKillProcess: sandbox.SeccompKill,
	specs.ActLog:         sandbox.SeccompLog,
}

var seccompOps = map[specs.LinuxSeccompOperator]sandbox.SeccompOp{
	specs.OpEqualTo:      sandbox.SeccompEq,
	specs.OpNotEqual:     sandbox.SeccompNe,
	specs.OpLessThan:     sandbox.SeccompLt,
	specs.OpLessEqual:    sandbox.SeccompLe,
	specs.OpGreaterThan:  sandbox.SeccompGt,
	specs.OpGreaterEqual: sandbox.SeccompGe,
	specs.OpMaskedEqual:  sandbox.SeccompMaskedEq,
}

// seccomp maps linux.seccomp onto Security.Seccomp, one rule per entry of
// syscalls, in order. Without linux.seccomp the sandbox's default policy
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
	pol := &sandbox.SeccompPolicy{}
	pol.DefaultAction, pol.DefaultErrno = m.seccompAction(base+".defaultAction", base+".defaultErrnoRet", s.DefaultAction, s.DefaultErrnoRet)
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
		rule := sandbox.SeccompRule{Names: append([]string(nil), sc.Names...)}
		rule.Action, rule.Errno = m.seccompAction(p+".action", p+".errnoRet", sc.Action, sc.ErrnoRet)
		for j, a := range sc.Args {
			ap := fmt.Sprintf("%s.args[%d]", p, j)
			op, ok := seccompOps[a.Op]
			if !ok {
				m.refuse(ap+".op", "unknown comparison %q", a.Op)
				continue
			}
			if a.Index > 5 {
				m.refuse(ap+".index", "must be from 0 to 5, not %d", a.Index)
				continue
			}
			arg := sandbox.SeccompArg{Index: uint8(a.Index), Op: op, Value: a.Value}
			if op == sandbox.SeccompMaskedEq {
				// libseccomp's masked comparison takes the mask first.
				arg.Mask, arg.Value = a.Value, a.ValueTwo
			} else if a.ValueTwo != 0 {
				m.refuse(ap+".valueTwo", "is only meaningful with SCMP_CMP_MASKED_EQ")
				continue
			}
			rule.Args = append(rule.Args, arg)
		}
		pol.Rules = append(pol.Rules, rule)
	}
	if len(m.errs) == n {
		m.cfg.Security.Seccomp = pol
		m.from("Security.Seccomp", base)
	}
}

func (m *mapper) seccompAction(p, errnoPath string, a specs.LinuxSeccompAction, errnoRet *uint) (sandbox.SeccompAction, syscall.Errno) {
	act, ok := seccompActions[a]
	switch {
	case ok:
	case a == specs.ActKill || a == specs.ActKillThread:
		m.refuse(p, "the sandbox's filter kills the whole process, never one thread; use SCMP_ACT_KILL_PROCESS")
		return 0, 0
	default:
		m.refuse(p, "the sandbox's filter allows, fails with an errno, kills the process or logs; %q is none of these", a)
		return 0, 0
	}
	if errnoRet == nil {
		return act, 0
	}
	if act != sandbox.SeccompErrno {
		m.refuse(errnoPath, "is only meaningful with SCMP_ACT_ERRNO")
		return act, 0
	}
	if *errnoRet == 0 || *errnoRet > 4095 {
		m.refuse(errnoPath, "must be from 1 to 4095, not %d", *errnoRet)
		return act, 0
	}
	return act, syscall.Errno(*errnoRet)
}
