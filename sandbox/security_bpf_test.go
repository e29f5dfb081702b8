//go:build linux

package sandbox

import (
	"encoding/binary"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestSeccompPoliciesInInterpreter checks the filters that Security's
// seccomp fields compile to, before any kernel sees them: the exact bytes
// the init would load run in golang.org/x/net/bpf's interpreter against
// system calls, and each must get the action the policy says.
func TestSeccompPoliciesInInterpreter(t *testing.T) {
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	errno := func(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }
	type call struct {
		name string
		nr   uintptr
		args [6]uint64
		want uint32
	}
	dockerProfile := []byte(`{"defaultAction": "SCMP_ACT_ERRNO",
		"syscalls": [{"names": ["getpid", "exit_group"], "action": "SCMP_ACT_ALLOW"},
		             {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}`)
	for _, tc := range []struct {
		name  string
		sec   Security
		calls []call
	}{
		{"deny-list", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EXDEV)},
			{Names: []string{"socket"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xffffffff, ValueTwo: unix.AF_INET}}},
		}}}, []call{
			{"mkdirat", unix.SYS_MKDIRAT, [6]uint64{}, errno(unix.EXDEV)},
			{"getpid", unix.SYS_GETPID, [6]uint64{}, allow},
			{"socket(AF_INET)", unix.SYS_SOCKET, [6]uint64{unix.AF_INET}, kill},
			{"socket(AF_INET) with high bits", unix.SYS_SOCKET, [6]uint64{1<<32 | unix.AF_INET}, kill},
			{"socket(AF_UNIX)", unix.SYS_SOCKET, [6]uint64{unix.AF_UNIX}, allow},
		}},
		{"allow-list", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(unix.ENOSYS), Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
		}}}, []call{
			{"read", unix.SYS_READ, [6]uint64{}, allow},
			{"openat", unix.SYS_OPENAT, [6]uint64{}, errno(unix.ENOSYS)},
		}},
		{"extend the default", Security{SeccompExtend: true, Seccomp: &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActKillProcess},
			{Names: []string{"mount"}, Action: specs.ActAllow}, // the default's denial wins
		}}}, []call{
			{"getppid", unix.SYS_GETPPID, [6]uint64{}, kill},
			{"mount", unix.SYS_MOUNT, [6]uint64{}, errno(unix.EPERM)},
			{"keyctl", unix.SYS_KEYCTL, [6]uint64{}, errno(unix.EPERM)},
			{"read", unix.SYS_READ, [6]uint64{}, allow},
		}},
		{"default with CAP_SYS_PTRACE kept", Security{Capabilities: []string{"CAP_SYS_PTRACE"}}, []call{
			{"ptrace", unix.SYS_PTRACE, [6]uint64{}, allow},
			{"unshare", unix.SYS_UNSHARE, [6]uint64{}, errno(unix.EPERM)},
		}},
		{"default", Security{}, []call{
			{"ptrace", unix.SYS_PTRACE, [6]uint64{}, errno(unix.EPERM)},
			{"ioctl(TIOCSTI)", unix.SYS_IOCTL, [6]uint64{0, unix.TIOCSTI}, errno(unix.EPERM)},
			{"ioctl(TIOCGWINSZ)", unix.SYS_IOCTL, [6]uint64{0, unix.TIOCGWINSZ}, allow},
			{"clone(CLONE_NEWUSER)", unix.SYS_CLONE, [6]uint64{unix.CLONE_NEWUSER}, errno(unix.EPERM)},
			{"clone3", unix.SYS_CLONE3, [6]uint64{}, errno(unix.ENOSYS)},
		}},
		{"docker profile", Security{SeccompProfile: dockerProfile}, []call{
			{"getpid", unix.SYS_GETPID, [6]uint64{}, allow},
			{"uname", unix.SYS_UNAME, [6]uint64{}, errno(unix.ENOSYS)},
			{"openat", unix.SYS_OPENAT, [6]uint64{}, errno(unix.EPERM)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.sec.filter()
			require.NoError(t, err)
			vm, arch := filterVM(t, f.data)
			for _, c := range tc.calls {
				assert.Equal(t, c.want, runFilter(t, vm, arch, uint32(c.nr), c.args), c.name)
			}
			// Any call through another ABI is killed, whatever the policy.
			foreign := uint32(unix.AUDIT_ARCH_I386)
			if runtime.GOARCH != "amd64" {
				foreign = unix.AUDIT_ARCH_ARM
			}
			assert.Equal(t, kill, runFilter(t, vm, foreign, unix.SYS_GETPID, [6]uint64{}), "foreign ABI")
		})
	}
}

// filterVM decodes an encoded filter (seccomp.Filter.MarshalBinary: an
// 8-byte header holding the audit architecture, then struct sock_filter
// records) into an interpreter.
func filterVM(t *testing.T, data []byte) (*bpf.VM, uint32) {
	t.Helper()
	require.Greater(t, len(data), 8)
	var prog []bpf.Instruction
	for b := data[8:]; len(b) >= 8; b = b[8:] {
		raw := bpf.RawInstruction{Op: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
		prog = append(prog, raw.Disassemble())
	}
	vm, err := bpf.NewVM(prog)
	require.NoError(t, err)
	return vm, binary.LittleEndian.Uint32(data[4:])
}

// runFilter runs the filter on struct seccomp_data for one call. The
// interpreter loads words in network byte order, so each 32-bit word is
// laid out big-endian to read as the kernel's little-endian load would.
func runFilter(t *testing.T, vm *bpf.VM, arch, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	in := make([]byte, 64)
	binary.BigEndian.PutUint32(in[0:], nr)
	binary.BigEndian.PutUint32(in[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(in[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(in[16+8*i+4:], uint32(a>>32))
	}
	got, err := vm.Run(in)
	require.NoError(t, err)
	return uint32(got)
}
