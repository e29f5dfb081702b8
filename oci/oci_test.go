//go:build linux

package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/cgroup"
	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/mount"
	"github.com/stockade/stockade/sandbox"
)

// base returns a spec that maps: runc's, made runnable, with the working
// directory /work.
func base(t *testing.T) *specs.Spec {
	s := readSpec(t, filepath.Join("testdata", "runc-spec.json"))
	runnable(s, "/work")
	return s
}

func ptr[T any](v T) *T { return &v }

// TestFromSpecMaps checks what each mapped field becomes, and that the
// Config survives a round trip.
func TestFromSpecMaps(t *testing.T) {
	dir := bundle(t)
	rootfs := filepath.Join(dir, "rootfs")
	for _, tc := range []struct {
		name  string
		edit  func(*specs.Spec)
		check func(*testing.T, sandbox.Config)
	}{
		{"memory and swap", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](96 << 20)}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, int64(64<<20), c.Limits.Memory)
			require.Equal(t, int64(32<<20), c.Limits.Swap)
		}},
		{"memory without swap", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](64 << 20)}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, int64(sandbox.SwapUnlimited), c.Limits.Swap)
		}},
		{"memory with as much swap as memory: none", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](64 << 20)}
		}, func(t *testing.T, c sandbox.Config) {
			require.Zero(t, c.Limits.Swap)
		}},
		{"pids, cpu", func(s *specs.Spec) {
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](64)}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0", Mems: "0"}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, int64(64), c.Limits.Pids)
			require.Equal(t, 0.5, c.Limits.CPU)
			require.Equal(t, uint64(50), c.Limits.CPUWeight)
			require.Equal(t, "0", c.Limits.CPUs)
			require.Equal(t, "0", c.Limits.Mems)
		}},
		{"cpu with a period", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](500000)}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, 0.1, c.Limits.CPU)
			require.Equal(t, 500*time.Millisecond, c.Limits.CPUPeriod)
		}},
		{"cpu with the default period", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](200000)}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, 2.0, c.Limits.CPU)
			require.Zero(t, c.Limits.CPUPeriod)
		}},
		{"device rules", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				{Allow: true, Type: "c", Major: ptr[int64](10), Minor: ptr[int64](229), Access: "rwm"},
				{Allow: true, Type: "b", Major: ptr[int64](8), Access: "r"},
				{Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3)},
			}
		}, func(t *testing.T, c sandbox.Config) {
			if !deviceRulesApply() {
				require.Nil(t, c.Limits.Devices, "ignored where the sandbox cannot apply them")
				return
			}
			require.Equal(t, []cgroup.DeviceRule{
				{Type: "a", Major: cgroup.AnyDevice, Minor: cgroup.AnyDevice, Access: "rwm"},
				{Allow: true, Type: "c", Major: 10, Minor: 229, Access: "rwm"},
				{Allow: true, Type: "b", Major: 8, Minor: cgroup.AnyDevice, Access: "r"},
				{Type: "c", Major: 1, Minor: 3, Access: "rwm"},
			}, c.Limits.Devices)
		}},
		{"rlimits", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 64, Soft: 64},
				{Type: "RLIMIT_FSIZE", Hard: 1 << 20, Soft: 1 << 20},
				{Type: "RLIMIT_STACK", Hard: rlimitInf, Soft: rlimitInf},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
				{Type: "RLIMIT_AS", Hard: 4 << 30, Soft: 4 << 30},
				{Type: "RLIMIT_NPROC", Hard: 100, Soft: 100},
				{Type: "RLIMIT_CPU", Hard: 3, Soft: 3},
			}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, sandbox.Rlimits{NoFile: 64, FileSize: 1 << 20, Stack: sandbox.Unlimited, AddressSpace: 4 << 30, Processes: 100, CPU: 3 * time.Second}, c.Limits.Rlimits)
		}},
		{"propagations", func(s *specs.Spec) {
			s.Linux.RootfsPropagation = "rshared"
			s.Mounts = append(s.Mounts,
				// runtime-tools' mounts program gives binds a tmpfs's options.
				specs.Mount{Destination: "/mnt/a", Source: "/srv", Options: []string{"nosuid", "mode=755", "size=1k", "bind", "shared"}},
				specs.Mount{Destination: "/mnt/b", Source: "/srv", Options: []string{"rbind", "runbindable"}},
				specs.Mount{Destination: "/mnt/c", Source: "/srv", Options: []string{"bind", "rslave"}},
				specs.Mount{Destination: "/mnt/d", Source: "/srv", Options: []string{"bind", "shared", "private"}},
				specs.Mount{Destination: "/mnt/e", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1k", "rshared"}},
				specs.Mount{Destination: "/mnt/f", Type: "tmpfs", Source: "tmpfs", Options: []string{"slave"}},
			)
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, "shared", c.RootPropagation)
			got := map[string]mount.Propagation{}
			for _, m := range c.Mounts {
				if strings.HasPrefix(m.Target, "/mnt/") {
					got[m.Target] = mount.Propagation(m.Propagation)
				}
			}
			require.Equal(t, map[string]mount.Propagation{
				"/mnt/a": mount.Shared, "/mnt/b": mount.Unbindable, "/mnt/c": mount.Private,
				"/mnt/d": mount.Private, "/mnt/e": mount.Shared, "/mnt/f": mount.Private,
			}, got)
		}},
		{"slave root: private", func(s *specs.Spec) { s.Linux.RootfsPropagation = "rslave" }, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, "", c.RootPropagation)
		}},
		{"no network namespace: the host's network", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNamespace(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Mounts = removeMount(s.Mounts, "/sys")
		}, func(t *testing.T, c sandbox.Config) {
			require.True(t, c.Network.ShareHost)
		}},
		{"no user namespace: for host root, the root keeps its on-disk ids", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNamespace(s.Linux.Namespaces, specs.UserNamespace)
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, os.Geteuid() == 0, c.RootIDMap)
		}},
		{"a user namespace: the root shows the sandbox's ids", func(s *specs.Spec) {
			s.Linux.Namespaces = append(removeNamespace(s.Linux.Namespaces, specs.UserNamespace), specs.LinuxNamespace{Type: specs.UserNamespace})
		}, func(t *testing.T, c sandbox.Config) {
			require.False(t, c.RootIDMap)
		}},
		{"time namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		}, func(t *testing.T, c sandbox.Config) {
			require.True(t, c.TimeNamespace)
		}},
		{"id mappings", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 200000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 300000, Size: 65536}}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, sandbox.IDMap{HostUID: 200000, HostGID: 300000, Size: 65536}, c.IDMap)
		}},
		{"a user, no capabilities", func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1234, GID: 1234}
			s.Process.Capabilities = nil
		}, func(t *testing.T, c sandbox.Config) {
			require.False(t, c.RunAsRoot)
			require.Equal(t, 1234, c.UID)
			require.Equal(t, 1234, c.GID)
			require.Nil(t, c.Security.Capabilities)
		}},
		{"a user with ambient capabilities", func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1234, GID: 1234}
			caps := []string{"CAP_NET_BIND_SERVICE"}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Ambient: caps}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, []string{"CAP_NET_BIND_SERVICE"}, c.Security.Capabilities)
		}},
		{"writable root, mounts", func(s *specs.Spec) {
			s.Root.Readonly = false
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind", "ro", "nosuid", "rprivate"}},
				specs.Mount{Destination: "/out", Source: "/srv/out", Options: []string{"bind"}},
				specs.Mount{Destination: "/scratch", Type: "tmpfs", Options: []string{"size=1m", "nr_inodes=1k", "mode=1777", "uid=5", "gid=6", "noatime"}},
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Options: []string{"size=2g", "ro"}},
			)
		}, func(t *testing.T, c sandbox.Config) {
			require.True(t, c.WritableRoot)
			require.Equal(t, []sandbox.Mount{
				{Kind: sandbox.Bind, Source: rootfs + "/work", Target: "/work", Writable: true},
				{Kind: sandbox.Bind, Source: dir + "/data", Target: "/data"},
				{Kind: sandbox.Bind, Source: "/srv/out", Target: "/out", Writable: true},
				{Kind: sandbox.Tmpfs, Target: "/scratch", Size: 1 << 20, Inodes: 1 << 10, Mode: fs.ModeSticky | 0o777, UID: 5, GID: 6},
				{Kind: sandbox.Tmpfs, Target: "/tmp", Size: 2 << 30, Mode: 0o755, ReadOnly: true},
			}, c.Mounts)
		}},
		{"the working directory inside a bind", func(s *specs.Spec) {
			s.Process.Cwd = "/srv/app/src"
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/srv", Type: "bind", Source: "/host/srv", Options: []string{"ro"}},
				specs.Mount{Destination: "/srv/app/src/cache", Type: "tmpfs"},
			)
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, []sandbox.Mount{
				{Kind: sandbox.Bind, Source: "/host/srv", Target: "/srv"},
				{Kind: sandbox.Bind, Source: "/host/srv/app/src", Target: "/srv/app/src"},
				{Kind: sandbox.Tmpfs, Target: "/srv/app/src/cache", Size: sandbox.DefaultTmpfsSize, Mode: 0o755},
			}, c.Mounts)
		}},
		{"the working directory inside a tmpfs", func(s *specs.Spec) {
			s.Process.Cwd = "/tmp/w"
			s.Process.User = specs.User{UID: 7, GID: 8}
			s.Process.Capabilities = nil
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, []sandbox.Mount{{Kind: sandbox.Tmpfs, Target: "/tmp/w", Size: sandbox.DefaultTmpfsSize, Inodes: sandbox.DefaultTmpfsInodes, Mode: 0o755, UID: 7, GID: 8}}, c.Mounts)
		}},
		{"a mount at the working directory", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/work", Type: "tmpfs", Options: []string{"size=8m"}})
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, []sandbox.Mount{{Kind: sandbox.Tmpfs, Target: "/work", Size: 8 << 20, Mode: 0o755}}, c.Mounts)
		}},
		{"no /sys", func(s *specs.Spec) {
			s.Mounts = removeMount(s.Mounts, "/sys")
		}, func(t *testing.T, c sandbox.Config) {
			require.False(t, c.Security.Sysfs)
		}},
		{"seccomp", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction:   specs.ActErrno,
				DefaultErrnoRet: ptr[uint](uint(syscall.ENOSYS)),
				Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
					{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
					{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
					{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: ptr[uint](uint(syscall.EACCES))},
					{Names: []string{"ptrace"}, Action: specs.ActKillProcess},
					{Names: []string{"uname"}, Action: specs.ActLog},
				},
			}
		}, func(t *testing.T, c sandbox.Config) {
			// The spec's policy is the Config's, Architectures left out.
			require.Equal(t, specs.ActErrno, c.Security.Seccomp.DefaultAction)
			require.Equal(t, uint(syscall.ENOSYS), *c.Security.Seccomp.DefaultErrnoRet)
			require.Nil(t, c.Security.Seccomp.Architectures)
			require.Len(t, c.Security.Seccomp.Syscalls, 6)
			require.Equal(t, specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, Op: specs.OpMaskedEqual}}},
				c.Security.Seccomp.Syscalls[2])
			require.NoError(t, c.Validate())
		}},
		{"seccomp that allows everything", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}, func(t *testing.T, c sandbox.Config) {
			require.True(t, c.Security.SeccompUnconfined)
			require.Nil(t, c.Security.Seccomp)
		}},
		{"no limits: the sandbox's defaults", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](0), Swap: ptr[int64](-1)}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](0)}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](50000), Shares: ptr[uint64](0)}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, sandbox.Limits{Rlimits: sandbox.Rlimits{NoFile: 1024}}, c.Limits)
		}},
		{"unlimited in so many words: the defaults lifted", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)}
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](-1)}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, sandbox.Limits{Memory: sandbox.Unlimited, Pids: sandbox.Unlimited, Rlimits: sandbox.Rlimits{NoFile: 1024}}, c.Limits)
		}},
		{"cwd at the root: no mount for it", func(s *specs.Spec) {
			s.Process.Cwd = "/"
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, "/", c.Dir)
			for _, m := range c.Mounts {
				require.NotEqual(t, "/", m.Target, "a mount on the root for the working directory")
			}
		}},
		{"process user, OOM score, new privileges, sysctl, soft rlimits", func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 10, GID: 10, AdditionalGids: []uint32{5, 7}, Umask: ptr[uint32](0o27)}
			s.Process.Capabilities.Ambient = s.Process.Capabilities.Bounding
			s.Process.OOMScoreAdj = ptr(500)
			s.Process.NoNewPrivileges = false
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 4000, Soft: 3000},
				{Type: "RLIMIT_DATA", Hard: 6 << 30, Soft: 5 << 30},
				{Type: "RLIMIT_CPU", Hard: 120, Soft: 60},
			}
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, []int{5, 7}, c.Groups)
			require.Equal(t, fs.FileMode(0o27), *c.Umask)
			require.Equal(t, 500, c.Limits.OOMScoreAdj)
			require.True(t, c.Security.AllowNewPrivileges)
			require.True(t, c.Mqueue, "runc's spec mounts /dev/mqueue")
			require.Equal(t, map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"}, c.Sysctl)
			require.Equal(t, sandbox.Rlimits{NoFile: 4000, Data: 6 << 30, CPU: 120 * time.Second}, c.Limits.Rlimits)
			require.Equal(t, sandbox.Rlimits{NoFile: 3000, Data: 5 << 30, CPU: 60 * time.Second}, c.Limits.SoftRlimits)
		}},
		{"masked and read-only paths of the spec's own", func(s *specs.Spec) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/etc/shadow")
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/etc")
		}, func(t *testing.T, c sandbox.Config) {
			n := len(c.Mounts)
			require.GreaterOrEqual(t, n, 2)
			require.Equal(t, []sandbox.Mount{{Kind: sandbox.Mask, Target: "/etc/shadow"}, {Kind: sandbox.ReadOnlyPath, Target: "/etc"}}, c.Mounts[n-2:])
		}},
		{"more group ids than user ids", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 2000}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 3000}}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, sandbox.IDMap{HostUID: 1000, HostGID: 1000, Size: 2000, GIDSize: 3000}, c.IDMap)
		}},
		{"an absolute cgroupsPath", func(s *specs.Spec) {
			s.Linux.CgroupsPath = "/machine/c1"
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, "/machine", c.Limits.CgroupParent)
			require.Equal(t, "c1", c.Limits.CgroupName)
		}},
		{"a relative cgroupsPath", func(s *specs.Spec) {
			s.Linux.CgroupsPath = "c1"
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, ".", c.Limits.CgroupParent, "below the runtime's own group")
			require.Equal(t, "c1", c.Limits.CgroupName)
		}},
		{"a tmpfs's source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/cache", Type: "tmpfs", Source: "cache", Options: []string{"size=1m"}})
		}, func(t *testing.T, c sandbox.Config) {
			require.Contains(t, c.Mounts, sandbox.Mount{Kind: sandbox.Tmpfs, Source: "cache", Target: "/cache", Size: 1 << 20, Mode: 0o755})
		}},
		{"terminal", func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
		}, func(t *testing.T, c sandbox.Config) {
			require.Equal(t, &sandbox.TTY{Rows: 30, Cols: 100}, c.TTY)
		}},
		{"ignored fields", func(s *specs.Spec) {
			s.Process.ApparmorProfile = "docker-default"
			s.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
			s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
			s.Linux.MountLabel = "system_u:object_r:container_file_t:s0"
			s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimePeriod: ptr[uint64](1000000), RealtimeRuntime: ptr[int64](950000)}
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}}
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}} // what the sandbox does anyway
			s.Linux.RootfsPropagation = "rprivate"
			s.Annotations = map[string]string{"org.example": "x"}
			s.Version = "1.2.0"
		}, func(t *testing.T, c sandbox.Config) {
			plain, err := FromSpec(base(t), dir)
			require.NoError(t, err)
			require.Equal(t, plain, c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base(t)
			tc.edit(s)
			tc.check(t, roundTrip(t, s, dir))
		})
	}
}

func removeNamespace(list []specs.LinuxNamespace, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range list {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	return out
}

func removeMount(list []specs.Mount, dest string) []specs.Mount {
	var out []specs.Mount
	for _, m := range list {
		if m.Destination != dest {
			out = append(out, m)
		}
	}
	return out
}

// TestFromSpecRefuses checks that each field the sandbox cannot honour is
// refused with its spec path, before and after Validate.
func TestFromSpecRefuses(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*specs.Spec)
	}{
		{"process.cwd", func(s *specs.Spec) { s.Process.Cwd = "work" }},
		{"process.args", func(s *specs.Spec) { s.Process.Args = nil }},
		{"process.user.gid", func(s *specs.Spec) { s.Process.User.GID = 5 }},
		{"process.capabilities.effective", func(s *specs.Spec) { s.Process.Capabilities.Effective = nil }},
		{"process.capabilities.ambient", func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Process.Capabilities.Ambient = nil
		}},
		{"process.capabilities.bounding", func(s *specs.Spec) {
			c := []string{"CAP_NOPE"}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
		}},
		{"process.rlimits[1].type", func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_MEMLOCK", Hard: 1, Soft: 1})
		}},
		{"process.rlimits[0].soft", func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 1 << 20 }},
		{"process.user.umask", func(s *specs.Spec) { s.Process.User.Umask = ptr[uint32](0o1022) }},
		{"process.oomScoreAdj", func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(1001) }},
		{"linux.sysctl.net.ipv4.ip_forward", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNamespace(s.Linux.Namespaces, specs.NetworkNamespace)
			s.Mounts = removeMount(s.Mounts, "/sys")
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}},
		{"process.rlimits[0].hard", func(s *specs.Spec) { s.Process.Rlimits[0] = specs.POSIXRlimit{Type: "RLIMIT_FSIZE"} }},
		{"process.rlimits[0]", func(s *specs.Spec) { s.Process.Rlimits[0] = specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 4, Soft: 4} }},
		{"process.scheduler", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther} }},
		{"process.ioPriority", func(s *specs.Spec) { s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE} }},
		{"process.execCPUAffinity", func(s *specs.Spec) { s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0"} }},
		{"process", func(s *specs.Spec) { s.Process = nil }},
		{"root.path", func(s *specs.Spec) { s.Root = nil }},
		{"domainname", func(s *specs.Spec) { s.Domainname = "example.org" }},
		{"hostname", func(s *specs.Spec) { s.Hostname = "no_underscores" }},
		{"hooks", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}} }},
		{"windows", func(s *specs.Spec) { s.Windows = &specs.Windows{} }},
		{"mounts[7].type", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "overlay", Source: "overlay"})
		}},
		{"mounts[7].options[1]", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/srv", Options: []string{"rbind", "noexec"}})
		}},
		{"mounts[7].options[0]", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/srv", Options: []string{"remount"}})
		}},
		{"mounts[7].options[0]", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Options: []string{"size=50%"}})
		}},
		{"mounts[7]", func(s *specs.Spec) { // by Validate: a setuid mode
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Options: []string{"mode=4755"}})
		}},
		{"mounts[7].destination", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/../etc", Type: "tmpfs"})
		}},
		{"mounts[7].uidMappings", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/srv", UIDMappings: []specs.LinuxIDMapping{{Size: 1}}})
		}},
		{"mounts[5].options", func(s *specs.Spec) { s.Mounts[5].Options = []string{"nosuid"} }},
		{"mounts[5]", func(s *specs.Spec) { s.Linux.Namespaces = removeNamespace(s.Linux.Namespaces, specs.NetworkNamespace) }},
		{"linux.namespaces", func(s *specs.Spec) { s.Linux.Namespaces = removeNamespace(s.Linux.Namespaces, specs.PIDNamespace) }},
		{"linux.namespaces[1].path", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/1/ns/net" }}, // with /sys
		{"linux.namespaces[2].path", func(s *specs.Spec) { s.Linux.Namespaces[2].Path = "/proc/1/ns/ipc" }},
		{"linux.namespaces[5].type", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}},
		{"linux.uidMappings", func(s *specs.Spec) { s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}} }},
		{"linux.uidMappings[0].hostID", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 0, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}},
		{"linux.gidMappings[0].containerID", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 1, HostID: 1000, Size: 1}}
		}},
		{"linux.gidMappings[0].size", func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 5, GID: 5}
			s.Process.Capabilities = nil
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 10}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}},
		{"linux.cgroupsPath", func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:cri:c1" }},
		{"linux.cgroupsPath", func(s *specs.Spec) { s.Linux.CgroupsPath = "../c1" }},
		{"linux.timeOffsets", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}},
		{"linux.sysctl.vm.swappiness", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }},
		{"linux.devices[0]", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 10, Minor: 229}}
		}},
		{"linux.devices[0].type", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "x", Major: 10, Minor: 229}}
		}},
		{"linux.devices[1].fileMode", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr[fs.FileMode](0o4666)}}
		}},
		{"linux.devices[0].path", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/fuse", Type: "c", Major: 10, Minor: 229}}
		}},
		{"linux.rootfsPropagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "rsharedd" }},
		{"linux.maskedPaths[10]", func(s *specs.Spec) { s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "etc/shadow") }},
		{"linux.readonlyPaths[5]", func(s *specs.Spec) { s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/etc/../x") }},
		{"linux.resources.memory.swap", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](32 << 20)}
		}},
		{"linux.resources.memory.swap", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Swap: ptr[int64](32 << 20)}
		}},
		{"linux.resources.memory.limit", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](-2)}
		}},
		{"linux.resources.memory.swap", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](32 << 20)}
		}},
		{"linux.resources.pids.limit", func(s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](-5)} }},
		{"linux.resources.cpu.quota", func(s *specs.Spec) { s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](-5)} }},
		{"linux.resources.memory.reservation", func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Reservation: ptr[int64](1)}
		}},
		{"linux.resources.cpu.period", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](2000000)}
		}},
		{"linux.resources.cpu.period", func(s *specs.Spec) { // by Validate: below 1 ms
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](999)}
		}},
		{"linux.resources.cpu.period", func(s *specs.Spec) { // would overflow a time.Duration
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](1 << 63)}
		}},
		{"linux.resources.cpu.burst", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Burst: ptr[uint64](1)}
		}},
		{"linux.resources.pids.limit", func(s *specs.Spec) { // by Validate: below MinPids
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](2)}
		}},
		{"linux.resources.blockIO.weight", func(s *specs.Spec) {
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: ptr[uint16](5)}
		}},
		{"linux.resources.unified.memory.high", func(s *specs.Spec) {
			s.Linux.Resources.Unified = map[string]string{"memory.high": "1"}
		}},
		{"linux.resources.hugepageLimits", func(s *specs.Spec) {
			s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}
		}},
		{"linux.seccomp.syscalls[1].names[1]", func(s *specs.Spec) { // by Validate
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read"}, Action: specs.ActAllow},
				{Names: []string{"write", "no_such_call"}, Action: specs.ActAllow},
			}}
		}},
		{"linux.seccomp.syscalls[0].action", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActKill}}}
		}},
		{"linux.seccomp.defaultAction", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}
		}},
		{"linux.seccomp.listenerPath", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/l.sock"}
		}},
		{"linux.seccomp.flags[0]", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}}
		}},
		{"linux.seccomp.syscalls[0].errnoRet", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: ptr[uint](1)}}}
		}},
		{"linux.seccomp.syscalls[0].args[0].valueTwo", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, ValueTwo: 2, Op: specs.OpEqualTo}}}}}
		}},
		{"linux.seccomp.syscalls[0].args[0].index", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}
		}},
		{"linux.intelRdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} }},
		{"linux.personality", func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32} }},
		{"linux.netDevices", func(s *specs.Spec) { s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth0": {}} }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			s := base(t)
			tc.edit(s)
			_, err := FromSpec(s, bundle(t))
			require.Equal(t, []string{tc.field}, refusedFields(t, err), "%v", err)
			ce, ok := errorsAsConfig(err)
			require.True(t, ok)
			require.Contains(t, err.Error(), ce.Field)
		})
	}
}

// TestFromSpecCgroupLimits checks that Validate's verdict on the limits
// is reported under the spec's path, and that a host that cannot apply
// them is left for Start to report.
func TestFromSpecCgroupLimits(t *testing.T) {
	s := base(t)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](4096)}
	_, err := FromSpec(s, bundle(t))
	if os.Geteuid() != 0 {
		// An ordinary user without a delegated cgroup: the host's
		// business, not the spec's.
		require.NoError(t, err)
		return
	}
	require.Equal(t, []string{"linux.resources.memory.limit"}, refusedFields(t, err)) // below cgroup.MinMemory
	require.ErrorContains(t, err, "sandbox field Limits.Memory")
}

// TestFromSpecListsEveryRefusal checks that one error reports every
// refused field, and that errors.As and errors.Is see through it.
func TestFromSpecListsEveryRefusal(t *testing.T) {
	s := base(t)
	s.Process.CommandLine = "sh"
	s.Domainname = "x"
	s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther}
	_, err := FromSpec(s, bundle(t))
	require.Equal(t, []string{"domainname", "process.commandLine", "process.scheduler"}, refusedFields(t, err))
	require.True(t, errors.Is(err, sandbox.ErrInvalidConfig))
	require.Contains(t, err.Error(), "3 fields of the spec are refused")
}

// TestWeightConversions checks that weights survive the trip through
// shares and blkio weights.
func TestWeightConversions(t *testing.T) {
	for w := uint64(1); w <= 10000; w++ {
		require.Equal(t, w, cpuWeight(cpuShares(w)), "CPU weight %d", w)
	}
	require.Equal(t, uint64(100), cpuWeight(1024))
	require.Equal(t, uint64(1024), cpuShares(100))
	for b := uint16(10); b <= 1000; b++ {
		w := ioWeight(b)
		require.Equal(t, b, blkioWeight(w), "blkio weight %d", b)
		require.Equal(t, w, ioWeight(blkioWeight(w)))
	}
	require.Equal(t, uint64(1), ioWeight(10))
	require.Equal(t, uint64(10000), ioWeight(1000))
}

// TestToSpec checks what a zero Config (with a root) looks like as a spec,
// and that ToSpec refuses what a spec cannot say.
func TestToSpec(t *testing.T) {
	s, err := ToSpec(sandbox.Config{Args: []string{"true"}, RootDir: "/srv/root"})
	require.NoError(t, err)
	require.Equal(t, "/work", s.Process.Cwd)
	require.Equal(t, specs.User{UID: 1000, GID: 1000}, s.Process.User)
	require.Equal(t, sandbox.DefaultEnv("sandbox", "/work"), s.Process.Env)
	require.Equal(t, "sandbox", s.Hostname)
	require.True(t, s.Root.Readonly)
	require.True(t, s.Process.NoNewPrivileges)
	require.Empty(t, s.Process.Capabilities.Bounding)
	require.NotNil(t, s.Process.Capabilities, "an absent capabilities object keeps every capability in some runtimes")
	require.Equal(t, []specs.POSIXRlimit{{Type: "RLIMIT_CORE"}}, s.Process.Rlimits)
	require.Nil(t, s.Linux.Seccomp)
	var types []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		types = append(types, ns.Type)
	}
	require.ElementsMatch(t, []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount", "user", "cgroup"}, types)
	require.Equal(t, specs.Mount{Destination: "/work", Type: "tmpfs", Source: "tmpfs",
		Options: []string{"nosuid", "nodev", "size=67108864", "nr_inodes=16384", "mode=755", "uid=1000", "gid=1000"}}, s.Mounts[len(s.Mounts)-1])

	// The trip back gives a Config that runs the same sandbox: the
	// working directory's tmpfs is now explicit.
	cfg, err := FromSpec(s, "/")
	require.NoError(t, err)
	require.Equal(t, []sandbox.Mount{{Kind: sandbox.Tmpfs, Target: "/work", Size: sandbox.DefaultTmpfsSize, Inodes: sandbox.DefaultTmpfsInodes, Mode: 0o755, UID: 1000, GID: 1000}}, cfg.Mounts)
	require.Equal(t, 1000, cfg.UID)
	require.Equal(t, "/srv/root", cfg.RootDir)

	// Propagations go there and back.
	s, err = ToSpec(sandbox.Config{Args: []string{"true"}, RootDir: "/srv/root", RootPropagation: "unbindable", Mounts: []sandbox.Mount{
		{Kind: sandbox.Bind, Source: "/srv", Target: "/srv", Propagation: "shared"},
		{Kind: sandbox.Tmpfs, Target: "/t", Size: 1 << 20, Mode: 0o755, Propagation: "unbindable"},
	}})
	require.NoError(t, err)
	require.Equal(t, "unbindable", s.Linux.RootfsPropagation)
	cfg, err = FromSpec(s, "/")
	require.NoError(t, err)
	require.Equal(t, "unbindable", cfg.RootPropagation)
	props := map[string]mount.Propagation{}
	for _, m := range cfg.Mounts {
		props[m.Target] = mount.Propagation(m.Propagation)
	}
	require.Equal(t, map[string]mount.Propagation{"/work": mount.Private, "/srv": mount.Shared, "/t": mount.Unbindable}, props)

	_, err = ToSpec(sandbox.Config{Args: []string{"true"}, Timeout: time.Second, Security: sandbox.Security{SeccompProfile: []byte("{}")}})
	require.Equal(t, []string{"RootDir", "Security.SeccompProfile", "Timeout"}, refusedFields(t, err))
}

// TestDevices: linux.devices become Nodes of Config.Mounts, after the
// spec's mounts and paths, and go back to linux.devices; the sandbox's
// own device nodes are left to it.
func TestDevices(t *testing.T) {
	testutil.RequireRoot(t)
	s := base(t)
	s.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr[fs.FileMode](0o620), UID: ptr[uint32](0), GID: ptr[uint32](5)},
		{Path: "/dev/loop200", Type: "b", Major: 7, Minor: 200},
		{Path: "/dev/ttyS9", Type: "u", Major: 4, Minor: 4660},
		{Path: "/run/fifo", Type: "p", Major: 8, Minor: 666, FileMode: ptr[fs.FileMode](0o600)},
	}
	c, err := FromSpec(s, t.TempDir())
	require.NoError(t, err)
	var nodes []sandbox.Mount
	for i, m := range c.Mounts {
		if m.Kind == sandbox.Node {
			nodes = append(nodes, m)
		} else {
			require.Empty(t, nodes, "Mounts[%d], a %s, after a node", i, m.Kind)
		}
	}
	char := fs.ModeDevice | fs.ModeCharDevice
	want := []sandbox.Mount{
		{Kind: sandbox.Node, Target: "/dev/fuse", Mode: char | 0o620, Rdev: unix.Mkdev(10, 229), GID: 5},
		{Kind: sandbox.Node, Target: "/dev/loop200", Mode: fs.ModeDevice | 0o666, Rdev: unix.Mkdev(7, 200)},
		{Kind: sandbox.Node, Target: "/dev/ttyS9", Mode: char | 0o666, Rdev: unix.Mkdev(4, 4660)},
		{Kind: sandbox.Node, Target: "/run/fifo", Mode: fs.ModeNamedPipe | 0o600},
	}
	require.Equal(t, want, nodes)

	back, err := ToSpec(c)
	require.NoError(t, err)
	var paths []string
	for _, d := range back.Linux.Devices {
		paths = append(paths, fmt.Sprintf("%s %s %d:%d %o %d:%d", d.Path, d.Type, d.Major, d.Minor, *d.FileMode, *d.UID, *d.GID))
	}
	require.Equal(t, []string{"/dev/fuse c 10:229 620 0:5", "/dev/loop200 b 7:200 666 0:0", "/dev/ttyS9 c 4:4660 666 0:0", "/run/fifo p 0:0 600 0:0"}, paths)
	again, err := FromSpec(back, "/")
	require.NoError(t, err)
	var nodesAgain []sandbox.Mount
	for _, m := range again.Mounts {
		if m.Kind == sandbox.Node {
			nodesAgain = append(nodesAgain, m)
		}
	}
	require.Equal(t, want, nodesAgain)
}

// TestJoinNetwork: a network namespace given by path is Network.Join, and
// goes back as that namespace's path.
func TestJoinNetwork(t *testing.T) {
	testutil.RequireRoot(t)
	s := base(t)
	require.Equal(t, specs.NetworkNamespace, s.Linux.Namespaces[1].Type)
	s.Linux.Namespaces[1].Path = "/run/netns/blue"
	s.Mounts = removeMount(s.Mounts, "/sys")
	c, err := FromSpec(s, t.TempDir())
	require.NoError(t, err)
	require.Equal(t, "/run/netns/blue", c.Network.Join)
	require.False(t, c.Network.ShareHost)
	back, err := ToSpec(c)
	require.NoError(t, err)
	require.Contains(t, back.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/blue"})
}

// TestLoad reads a bundle, and refuses a config.json with a field the
// runtime-spec does not know.
func TestLoad(t *testing.T) {
	dir := bundle(t)
	data, err := os.ReadFile(filepath.Join("testdata", "runc-spec.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o644))
	cfg, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, []string{"sh"}, cfg.Args)
	require.NotNil(t, cfg.TTY, "runc spec asks for a terminal")

	require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "process": {"cwd": "/work", "args": ["sh"], "user": {"uid": 0, "gid": 0}, "sandboxMagic": true}}`), 0o644))
	_, err = Load(dir)
	require.Equal(t, []string{ConfigFile}, refusedFields(t, err))
	require.ErrorContains(t, err, "sandboxMagic")

	_, err = Load(filepath.Join(dir, "nothing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestFromSpecRefusesDeviceRules: a device rule the kernel would not take
// is refused under its spec path, where the sandbox applies device rules.
func TestFromSpecRefusesDeviceRules(t *testing.T) {
	if !deviceRulesApply() {
		t.Skip("device rules are ignored here (cgroup v2, or an ordinary user): nothing to refuse")
	}
	for field, rule := range map[string]specs.LinuxDeviceCgroup{
		"linux.resources.devices[1].access": {Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rwx"},
		"linux.resources.devices[1].type":   {Allow: true, Type: "p", Access: "r"},
		"linux.resources.devices[1].major":  {Allow: true, Type: "b", Major: ptr[int64](-7), Access: "r"},
		"linux.resources.devices[1].minor":  {Allow: true, Type: "b", Minor: ptr[int64](1 << 21), Access: "r"},
	} {
		s := base(t)
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, rule}
		_, err := FromSpec(s, bundle(t))
		require.Equal(t, []string{field}, refusedFields(t, err), "%v", err)
	}
}
