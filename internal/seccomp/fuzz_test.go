//go:build linux

package seccomp

import (
	"encoding/binary"
	"testing"
)

// FuzzParseDockerProfile feeds arbitrary bytes to the profile parser. A
// profile it accepts must compile (unless the program would be too long)
// into a program the kernel's checker would take, and that program must
// agree with the policy on calls that its rules name.
func FuzzParseDockerProfile(f *testing.F) {
	f.Add(dockerDefaultJSON(f))
	for _, seed := range []string{
		`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
			"args": [{"index": 1, "value": 4294967295, "valueTwo": 21522, "op": "SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [
			{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LT"}]},
			{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_GE"},
				{"index": 1, "value": 5, "op": "SCMP_CMP_NE"}]},
			{"name": "personality", "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_LE"}]},
			{"names": ["clone"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 268435456, "op": "SCMP_CMP_GT"}]},
			{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"], "minKernel": "4.8"}},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}}
		]}`,
		`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [{"name": "set_tls", "action": "SCMP_ACT_ALLOW"}]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["nosuchcall"], "action": "SCMP_ACT_KILL"}]}`,
		`[]`, `{}`, `{"defaultAction": 5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, arch := range []string{"amd64", "arm64"} {
			p, err := ParseDockerProfile(data, ProfileOptions{Arch: arch, Kernel: "6.1", Caps: []string{"CAP_SYS_PTRACE"}})
			if err != nil {
				continue
			}
			filter, err := Compile(p)
			if err != nil {
				if len(p.Rules) > 100 {
					continue // possibly too long for the kernel
				}
				t.Fatalf("a parsed profile does not compile: %v", err)
			}
			e := newEvaluator(t, filter)
			a, _ := archFor(arch)
			// Derive arguments from the input so that the fuzzer can steer
			// them into the conditions.
			var args [6]uint64
			for i := range args {
				if len(data) >= 8*(i+1) {
					args[i] = binary.LittleEndian.Uint64(data[8*i:])
				}
			}
			// A bounded number of calls keeps each run fast, so that the
			// fuzzer spends its time on new inputs.
			budget := 48
			for _, r := range p.Rules {
				for _, name := range r.Names {
					nr, ok := a.number(name)
					if !ok || budget == 0 {
						continue
					}
					budget--
					for _, in := range [][6]uint64{args, {}, condArgs(r.Args)} {
						d := seccompData{nr: nr, arch: a.auditArch, args: in}
						if got, want := e.eval(t, d), reference(p, d); got != want {
							t.Fatalf("%s: %v = %v, the policy says %v", arch, d, got, want)
						}
					}
				}
			}
		}
	})
}

// condArgs returns arguments that satisfy the equality-like conditions of
// a rule, so that the comparison inside the program is reached.
func condArgs(conds []Cond) [6]uint64 {
	var args [6]uint64
	for _, c := range conds {
		args[c.Index] = c.Value
	}
	return args
}
