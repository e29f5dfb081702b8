//go:build linux

package oci

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
)

// runnable makes the edits a generated spec needs for the checks below:
// no terminal, as for any non-interactive run, and a working directory
// other than / (which the sandbox accepts too), so that the mount made for
// it can be checked.
func runnable(s *specs.Spec, cwd string) {
	s.Process.Terminal = false
	s.Process.Cwd = cwd
}

// checkGenerated checks a spec written by "runc spec" or "crun spec" (as
// host root, or not rootless): refused as written for the terminal, and
// mapped after the edits of runnable, to what the spec
// says, surviving a round trip.
func checkGenerated(t *testing.T, s *specs.Spec, rootless bool, idMap sandbox.IDMap) {
	dir := bundle(t)
	// runc's rootless spec has no network namespace and binds the host's
	// /sys, which the sandbox refuses too.
	shareHost := !slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
	asWritten, err := FromSpec(s, dir)
	if shareHost {
		require.Equal(t, []string{"mounts[5]"}, refusedFields(t, err))
	} else {
		require.NoError(t, err)
		require.NotNil(t, asWritten.TTY, "process.terminal, which the generated specs set")
	}

	runnable(s, "/root")
	if shareHost {
		s.Mounts = removeMount(s.Mounts, "/sys")
	}
	cfg := roundTrip(t, s, dir)
	require.Equal(t, []string{"sh"}, cfg.Args)
	require.Equal(t, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}, cfg.Env)
	require.Equal(t, "/root", cfg.Dir)
	require.True(t, cfg.RunAsRoot)
	require.Equal(t, filepath.Join(dir, "rootfs"), cfg.RootDir)
	require.False(t, cfg.WritableRoot)
	require.Contains(t, []string{"runc", "crun"}, cfg.Hostname)
	require.Equal(t, int64(1024), cfg.Limits.Rlimits.NoFile)
	require.ElementsMatch(t, []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}, cfg.Security.Capabilities)
	require.Equal(t, idMap, cfg.IDMap)
	require.Equal(t, !shareHost, cfg.Security.Sysfs)
	require.Equal(t, shareHost, cfg.Network.ShareHost)
	require.Equal(t, rootless && s.Linux.UIDMappings != nil, shareHost, "only runc --rootless shares the host's network")
	// The working directory is the root file system's /root, read-only.
	require.Equal(t, []sandbox.Mount{{Kind: sandbox.Bind, Source: filepath.Join(dir, "rootfs/root"), Target: "/root"}}, cfg.Mounts)
	require.Nil(t, cfg.Security.Seccomp)
	require.False(t, cfg.Security.SeccompUnconfined)
}

// TestGeneratedSpecFixtures maps the configs that runc 1.1 and crun 1.8
// wrote, checked in, so that the mapping is tested without the tools.
func TestGeneratedSpecFixtures(t *testing.T) {
	for _, tc := range []struct {
		file     string
		rootless bool
		idMap    sandbox.IDMap
	}{
		{"runc-spec.json", false, sandbox.IDMap{}},
		{"crun-spec.json", false, sandbox.IDMap{}},
		// Written by uid and gid 1000, as an ordinary user writes it.
		{"runc-spec-rootless.json", true, sandbox.IDMap{HostUID: 1000, HostGID: 1000, Size: 1}},
		// crun leaves the mappings to the time it runs.
		{"crun-spec-rootless.json", true, sandbox.IDMap{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if tc.idMap != (sandbox.IDMap{}) && os.Geteuid() != 0 {
				t.Skip("an ordinary user may not map another's ids")
			}
			checkGenerated(t, readSpec(t, filepath.Join("testdata", tc.file)), tc.rootless, tc.idMap)
		})
	}
}

// TestGeneratedSpecs maps the configs that the runc and crun installed
// here write now.
func TestGeneratedSpecs(t *testing.T) {
	t.Run("runc", func(t *testing.T) { checkGenerated(t, generate(t, 0, "runc"), false, sandbox.IDMap{}) })
	t.Run("crun", func(t *testing.T) { checkGenerated(t, generate(t, 0, "crun"), false, sandbox.IDMap{}) })
	t.Run("crun --rootless", func(t *testing.T) {
		checkGenerated(t, generate(t, 0, "crun", "--rootless"), true, sandbox.IDMap{})
	})
	t.Run("runc --rootless", func(t *testing.T) {
		testutil.RequireRoot(t)
		// Written by an ordinary user, it maps that user's ids.
		checkGenerated(t, generate(t, 65534, "runc", "--rootless"), true, sandbox.IDMap{HostUID: 65534, HostGID: 65534, Size: 1})
		// Written by host root, it maps host root: refused.
		s := generate(t, 0, "runc", "--rootless")
		_, err := FromSpec(s, bundle(t))
		require.Equal(t, []string{"linux.gidMappings[0].hostID", "linux.uidMappings[0].hostID", "mounts[5]"}, refusedFields(t, err))
	})
}

// runtimeSpecExamples returns the directory of the runtime-spec module's
// example configs, in the module cache.
func runtimeSpecExamples(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/opencontainers/runtime-spec").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		testutil.Skip(t, "the runtime-spec module is not in the module cache", "go mod download github.com/opencontainers/runtime-spec")
	}
	return filepath.Join(dir, "schema", "test", "config", "good")
}

// TestRuntimeSpecExamples maps the runtime-spec's own example configs:
// each is refused for exactly the fields the sandbox cannot honour.
func TestRuntimeSpecExamples(t *testing.T) {
	dir := runtimeSpecExamples(t)
	noNamespaces := []string{"linux.namespaces", "linux.namespaces", "linux.namespaces", "linux.namespaces"}
	want := map[string][]string{
		"minimal.json":           append(noNamespaces, "process"),
		"minimal-for-start.json": noNamespaces,
		"linux-netdevice.json":   append(noNamespaces, "linux.netDevices", "process"),
		"linux-rdma.json":        append(noNamespaces, "linux.resources.rdma", "process"),
		"freebsd-minimal.json":   append([]string{"freebsd"}, noNamespaces...),
		"freebsd-example.json":   nil, // checked below
		"zos-minimal.json":       nil,
		"zos-example.json":       nil,
		"spec-example.json": {
			"domainname",
			"hooks",
			"linux.resources.blockIO.leafWeight",
			"linux.resources.blockIO.throttleReadBpsDevice",
			"linux.resources.blockIO.throttleWriteIOPSDevice",
			"linux.resources.blockIO.weightDevice",
			"linux.resources.cpu.burst",
			"linux.resources.hugepageLimits",
			"linux.resources.memory.kernel",
			"linux.resources.memory.kernelTCP",
			"linux.resources.memory.reservation",
			"linux.resources.memory.swappiness",
			"linux.resources.memory.useHierarchy",
			"linux.resources.network",
			"linux.timeOffsets",
			"mounts[5].options",
			"process.capabilities.ambient",
			"process.capabilities.effective",
		},
	}
	if os.Geteuid() != 0 {
		// Only host root makes device nodes (/dev/fuse, /dev/sda).
		w := append([]string{"domainname", "hooks", "linux.devices[0]", "linux.devices[1]"}, want["spec-example.json"][2:]...)
		want["spec-example.json"] = w
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			// The examples are read as the runtime-spec types read them:
			// spec-example.json holds a field of an older version of the
			// spec (linux.resources.oomScoreAdj), which ReadSpec refuses.
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			s := new(specs.Spec)
			require.NoError(t, jsonUnmarshal(data, s))
			_, err = FromSpec(s, bundle(t))
			w, known := want[e.Name()]
			require.True(t, known, "a new example: add what it should map to")
			got := refusedFields(t, err)
			switch {
			case strings.HasPrefix(e.Name(), "freebsd"):
				require.Contains(t, got, "freebsd")
			case strings.HasPrefix(e.Name(), "zos"):
				require.Contains(t, got, "zos")
			default:
				require.Equal(t, w, got)
			}
		})
	}
}

// readExample reads one of the runtime-spec's examples as the runtime-spec
// types read it (spec-example.json holds linux.resources.oomScoreAdj, a
// field of an older version of the spec, which ReadSpec refuses).
func readExample(t *testing.T, name string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(runtimeSpecExamples(t), name))
	require.NoError(t, err)
	s := new(specs.Spec)
	require.NoError(t, jsonUnmarshal(data, s))
	return s
}

// TestRuntimeSpecExamplesRoundTrip takes the runtime-spec's examples,
// removes what FromSpec refuses in them (TestRuntimeSpecExamples lists
// it), and checks that the rest maps to what it says and survives a round
// trip.
func TestRuntimeSpecExamplesRoundTrip(t *testing.T) {
	dir := bundle(t)
	t.Run("minimal-for-start.json", func(t *testing.T) {
		s := readExample(t, "minimal-for-start.json")
		s.Process.Cwd = "/root"
		s.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}}}
		cfg := roundTrip(t, s, dir)
		require.Equal(t, []string{"sh"}, cfg.Args)
		require.True(t, cfg.RunAsRoot)
		require.True(t, cfg.Network.ShareHost, "no network namespace")
		require.True(t, cfg.WritableRoot)
	})
	t.Run("spec-example.json", func(t *testing.T) {
		s := readExample(t, "spec-example.json")
		p, l, r := s.Process, s.Linux, s.Linux.Resources
		p.Terminal = false
		p.Cwd = "/root"
		p.User.AdditionalGids = nil
		p.Capabilities.Effective = p.Capabilities.Bounding
		p.Capabilities.Ambient = p.Capabilities.Bounding
		s.Domainname = ""
		s.Hooks = nil
		s.Mounts[5].Options = append(s.Mounts[5].Options, "ro")
		l.Devices, l.Sysctl, l.TimeOffsets, l.RootfsPropagation = nil, nil, nil, ""
		r.BlockIO, r.HugepageLimits, r.Network = nil, nil, nil
		r.Memory.Reservation, r.Memory.Kernel, r.Memory.KernelTCP, r.Memory.Swappiness, r.Memory.UseHierarchy = nil, nil, nil, nil, nil
		r.CPU.Burst, r.CPU.RealtimePeriod, r.CPU.RealtimeRuntime = nil, nil, nil
		// Scaled to the sandbox's period: 2 CPUs. And this machine's
		// CPUs and memory nodes, which Validate checks.
		r.CPU.Quota, r.CPU.Period = ptr[int64](200000), ptr[uint64](100000)
		r.CPU.Cpus, r.CPU.Mems = "0", "0"
		cfg := roundTrip(t, s, dir)
		require.Equal(t, 1, cfg.UID)
		require.Equal(t, 1, cfg.GID)
		require.Equal(t, "slartibartfast", cfg.Hostname)
		require.Equal(t, sandbox.IDMap{HostUID: 1000, HostGID: 1000, Size: 32000}, cfg.IDMap)
		require.Equal(t, int64(1024), cfg.Limits.Rlimits.Core)
		require.Equal(t, int64(1024), cfg.Limits.Rlimits.NoFile)
		require.Equal(t, int64(512<<20), cfg.Limits.Memory)
		require.Zero(t, cfg.Limits.Swap, "swap equal to the limit: none")
		require.Equal(t, int64(32771), cfg.Limits.Pids)
		require.Equal(t, 2.0, cfg.Limits.CPU)
		require.Equal(t, uint64(100), cfg.Limits.CPUWeight)
		require.True(t, cfg.TimeNamespace)
		require.True(t, cfg.Security.Sysfs)
		require.Equal(t, specs.ActAllow, cfg.Security.Seccomp.DefaultAction)
		require.Len(t, cfg.Security.Seccomp.Syscalls, 1)
		require.Equal(t, []string{"getcwd", "chmod"}, cfg.Security.Seccomp.Syscalls[0].Names)
		require.Equal(t, specs.ActErrno, cfg.Security.Seccomp.Syscalls[0].Action)
		require.ElementsMatch(t, []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}, cfg.Security.Capabilities)
	})
}
