//go:build linux

package seccomp

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

func dockerDefaultJSON(tb testing.TB) []byte {
	tb.Helper()
	b, err := json.MarshalIndent(mobyseccomp.DefaultProfile(), "", "\t")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestParseDockerDefaultProfile parses Docker's default profile in its
// JSON form, as `docker run --security-opt seccomp=default.json` would get
// it, and checks it means what the Go form does.
func TestParseDockerDefaultProfile(t *testing.T) {
	for _, a := range arches {
		for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}} {
			opts := ProfileOptions{Arch: a.goarch, Caps: caps, Kernel: "6.8"}
			got, err := ParseDockerProfile(dockerDefaultJSON(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fromDocker(mobyseccomp.DefaultProfile(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %v: the JSON profile differs from the Go one", a.goarch, caps)
			}
			if _, err := Compile(got); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestParseDockerProfile(t *testing.T) {
	amd64 := lookupArch("amd64")
	const profile = `{
		"defaultAction": "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 38,
		"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
		"syscalls": [
			{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
			{"name": "getpid", "action": "SCMP_ACT_KILL"},
			{"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"},
			{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
			{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
			{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
			 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
			{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
			{"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
			{"names": ["sched_yield"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
			{"names": ["openat2"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.6"}},
			{"names": ["mseal"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "6.10"}},
			{"names": ["set_tls", "breakpoint"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm"]}},
			{"names": ["uname"], "action": "SCMP_ACT_LOG", "comment": "audited"},
			{"names": ["sysinfo"], "action": "SCMP_ACT_TRAP"}
		]
	}`
	for _, tc := range []struct {
		opts ProfileOptions
		call call
		want Action
	}{
		{ProfileOptions{}, call{name: "read"}, Allow},
		{ProfileOptions{}, call{name: "openat"}, enosys},
		{ProfileOptions{}, call{name: "getpid"}, KillProcess},
		{ProfileOptions{}, call{name: "getppid"}, KillProcess},
		{ProfileOptions{}, call{name: "mkdir"}, Errno(unix.EACCES)},
		{ProfileOptions{}, call{name: "socket", args: [6]uint64{unix.AF_INET}}, Allow},
		{ProfileOptions{}, call{name: "socket", args: [6]uint64{unix.AF_INET6}}, enosys},
		{ProfileOptions{}, call{name: "clone", args: [6]uint64{threadFlags}}, Allow},
		{ProfileOptions{}, call{name: "clone", args: [6]uint64{unix.CLONE_NEWUSER}}, enosys},
		{ProfileOptions{}, call{name: "ptrace"}, enosys},
		{ProfileOptions{Caps: []string{"CAP_SYS_PTRACE"}}, call{name: "ptrace"}, Allow},
		{ProfileOptions{}, call{name: "chroot"}, Allow},
		{ProfileOptions{Caps: []string{"CAP_SYS_ADMIN"}}, call{name: "chroot"}, enosys},
		{ProfileOptions{}, call{name: "arch_prctl"}, Allow},
		{ProfileOptions{}, call{name: "sched_yield"}, enosys},
		{ProfileOptions{Kernel: "5.4"}, call{name: "openat2"}, enosys},
		{ProfileOptions{Kernel: "5.6.0-rc1"}, call{name: "openat2"}, Allow},
		{ProfileOptions{Kernel: "6.9"}, call{name: "mseal"}, Allow},
		{ProfileOptions{Kernel: "6.10"}, call{name: "mseal"}, enosys},
		{ProfileOptions{}, call{name: "uname"}, Log},
		{ProfileOptions{}, call{name: "sysinfo"}, Trap},
	} {
		tc.opts.Arch = "amd64"
		if tc.opts.Kernel == "" {
			tc.opts.Kernel = "6.1"
		}
		p, err := ParseDockerProfile([]byte(profile), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := newEvaluator(t, f).eval(t, tc.call.data(t, amd64)); got != tc.want {
			t.Errorf("%+v: %s%#x = %v, want %v", tc.opts, tc.call.name, tc.call.args[:1], got, tc.want)
		}
	}
}

func TestParseDockerProfileErrors(t *testing.T) {
	for _, tc := range []struct {
		json string
		want string
		is   error
	}{
		{`{"syscalls": []}`, "defaultAction: not set", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []}`, `unknown field "sycalls"`, nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW"} {}`, "data after the JSON object", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read", "frobnicate"], "action": "SCMP_ACT_ERRNO"}]}`,
			`syscalls[0].names[1]: "frobnicate": unknown system call`, ErrUnknownSyscall},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "frob", "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["s390x"]}}]}`,
			`syscalls[0].names[0]: "frob": unknown system call`, ErrUnknownSyscall},
		{`{"defaultAction": "SCMP_ACT_DENY"}`, `defaultAction: unknown action "SCMP_ACT_DENY"`, nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}`, "defaultAction: errnoRet is only meaningful with SCMP_ACT_ERRNO", nil},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 0}`, "defaultAction: errnoRet 0: must be between 1 and 4095", nil},
		{`{"defaultAction": "SCMP_ACT_TRACE"}`, "defaultAction: SCMP_ACT_TRACE is not supported", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}`,
			"syscalls[0].action: SCMP_ACT_NOTIFY is not supported", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}`, "flags: not supported", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}`, "listenerPath: user notification is not supported", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}`, `architectures[0]: unknown architecture "SCMP_ARCH_Z80"`, nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`,
			"architectures and archMap: only one may be given", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}`,
			"syscalls[0]: both name and names are given", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}`, "syscalls[0]: names: no system call named", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [null]}`, "syscalls[0]: null", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`,
			"syscalls[0].args[0]: index 6: must be between 0 and 5", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}`,
			`syscalls[0].args[0]: op: unknown comparison "SCMP_CMP_ABOUT"`, nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_EQ"}]}]}`,
			"syscalls[0].args[0]: valueTwo: only meaningful with SCMP_CMP_MASKED_EQ", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}]}`,
			"syscalls[0]: Args[0]: argument 0: value 0x2 has bits outside mask 0x1 and can never match", nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMN"]}}]}`,
			`syscalls[0]: includes.caps[0]: "CAP_SYS_ADMN" is not a capability name`, nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "excludes": {"arches": ["amd46"]}}]}`,
			`syscalls[0]: excludes.arches[0]: unknown architecture "amd46"`, nil},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "six"}}]}`,
			"invalid kernel version", nil},
	} {
		_, err := ParseDockerProfile([]byte(tc.json), ProfileOptions{Arch: "amd64", Kernel: "6.1"})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "seccomp: docker profile: ") {
			t.Errorf("%s:\n got %v\nwant an error containing %q", tc.json, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%v does not match %v", err, tc.is)
		}
	}
}

func TestProfileOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		opts ProfileOptions
		want string
	}{
		{ProfileOptions{Caps: []string{"sys_admin"}}, `Caps[0]: "sys_admin" is not a capability name`},
		{ProfileOptions{Arch: "riscv64"}, `architecture "riscv64"`},
	} {
		_, err := DefaultPolicy(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.opts, err, tc.want)
		}
	}
	if _, err := ParseDockerProfile([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "5.6"}}]}`),
		ProfileOptions{Kernel: "latest"}); err == nil || !strings.Contains(err.Error(), `kernel version "latest"`) {
		t.Errorf("bad kernel option: got %v", err)
	}
}

func TestParseKernel(t *testing.T) {
	for in, want := range map[string][2]uint64{
		"6.8": {6, 8}, "6.8.0-45-generic": {6, 8}, "3.12-rc5": {3, 12}, "6.18.44-fc-v657": {6, 18}, "4.19.0": {4, 19},
	} {
		major, minor, err := parseKernel(in)
		if err != nil || major != want[0] || minor != want[1] {
			t.Errorf("%q: %d.%d %v, want %d.%d", in, major, minor, err, want[0], want[1])
		}
	}
	for _, in := range []string{"", "6", "x.y", "6.", ".8"} {
		if _, _, err := parseKernel(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	if _, err := runningKernel(); err != nil {
		t.Errorf("running kernel: %v", err)
	}
}
