//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// bundle makes a bundle directory whose rootfs holds the directories the
// fixtures' working directories name, and returns its path.
func bundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"rootfs/root", "rootfs/work", "rootfs/tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	return dir
}

// readSpec reads a fixture.
func readSpec(t *testing.T, file string) *specs.Spec {
	t.Helper()
	s, err := ReadSpec(file)
	require.NoError(t, err)
	return s
}

// refusedFields returns the spec paths of every refusal in err, sorted.
func refusedFields(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, sandbox.ErrInvalidConfig)
	var ce *sandbox.ConfigError
	require.ErrorAs(t, err, &ce)
	var fields []string
	var walk func(error)
	walk = func(e error) {
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *sandbox.ConfigError
		require.ErrorAs(t, e, &ce, "every refusal is a *sandbox.ConfigError: %v", e)
		fields = append(fields, ce.Field)
	}
	walk(err)
	slices.Sort(fields)
	return fields
}

// roundTrip checks that spec maps, that the Config survives a trip through
// a spec (spec -> Config -> spec -> Config), and that what the spec says
// in the fields that map survives spec -> Config -> spec. It returns the
// Config.
func roundTrip(t *testing.T, spec *specs.Spec, bundleDir string) sandbox.Config {
	t.Helper()
	cfg, err := FromSpec(spec, bundleDir)
	require.NoError(t, err)
	spec2, err := ToSpec(cfg)
	require.NoError(t, err)
	cfg2, err := FromSpec(spec2, bundleDir)
	require.NoError(t, err, "the spec ToSpec wrote is refused")
	require.Equal(t, cfg, cfg2, "the Config changed on its trip through a spec")
	survives(t, spec, spec2)
	// And once more: the spec is stable too.
	spec3, err := ToSpec(cfg2)
	require.NoError(t, err)
	require.Equal(t, spec2, spec3)
	return cfg
}

// survives checks that the fields of a that map are the same in b.
func survives(t *testing.T, a, b *specs.Spec) {
	t.Helper()
	ap, bp := a.Process, b.Process
	require.Equal(t, ap.Args, bp.Args, "process.args")
	require.Equal(t, append([]string{}, ap.Env...), bp.Env, "process.env")
	require.Equal(t, ap.Cwd, bp.Cwd, "process.cwd")
	require.Equal(t, ap.User.UID, bp.User.UID, "process.user.uid")
	require.Equal(t, ap.User.GID, bp.User.GID, "process.user.gid")
	if a.Hostname != "" {
		require.Equal(t, a.Hostname, b.Hostname, "hostname")
	}
	require.Equal(t, a.Root.Readonly, b.Root.Readonly, "root.readonly")
	if ap.Capabilities != nil {
		require.ElementsMatch(t, ap.Capabilities.Bounding, bp.Capabilities.Bounding, "process.capabilities.bounding")
		require.ElementsMatch(t, ap.Capabilities.Effective, bp.Capabilities.Effective, "process.capabilities.effective")
		require.ElementsMatch(t, ap.Capabilities.Permitted, bp.Capabilities.Permitted, "process.capabilities.permitted")
	}
	for _, r := range ap.Rlimits {
		require.Contains(t, bp.Rlimits, r, "process.rlimits")
	}
	al, bl := a.Linux, b.Linux
	if al == nil {
		return
	}
	for _, ns := range al.Namespaces {
		require.Contains(t, bl.Namespaces, ns, "linux.namespaces")
	}
	hasNet := slices.ContainsFunc(al.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	require.Equal(t, hasNet, slices.ContainsFunc(bl.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace }), "the network namespace")
	require.Equal(t, al.UIDMappings, bl.UIDMappings, "linux.uidMappings")
	require.Equal(t, al.GIDMappings, bl.GIDMappings, "linux.gidMappings")
	for _, p := range al.MaskedPaths {
		if !strings.HasPrefix(p, "/sys") || slices.Contains(bl.MaskedPaths, "/sys/firmware") {
			require.Contains(t, bl.MaskedPaths, p, "linux.maskedPaths")
		}
	}
	if r := al.Resources; r != nil {
		br := bl.Resources
		if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
			require.Equal(t, *r.Memory.Limit, *br.Memory.Limit, "linux.resources.memory.limit")
			if r.Memory.Swap != nil {
				require.Equal(t, *r.Memory.Swap, *br.Memory.Swap, "linux.resources.memory.swap")
			}
		}
		if c := r.CPU; c != nil {
			if c.Quota != nil && *c.Quota > 0 {
				require.Equal(t, *c.Quota, *br.CPU.Quota, "linux.resources.cpu.quota")
			}
			if c.Cpus != "" || c.Mems != "" {
				require.Equal(t, c.Cpus, br.CPU.Cpus, "linux.resources.cpu.cpus")
				require.Equal(t, c.Mems, br.CPU.Mems, "linux.resources.cpu.mems")
			}
		}
		if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
			require.Equal(t, *r.Pids.Limit, *br.Pids.Limit, "linux.resources.pids.limit")
		}
	}
	if al.Seccomp != nil {
		require.Equal(t, al.Seccomp.DefaultAction, bl.Seccomp.DefaultAction, "linux.seccomp.defaultAction")
		require.Equal(t, al.Seccomp.Syscalls, bl.Seccomp.Syscalls, "linux.seccomp.syscalls")
	}
	// Binds and tmpfs keep their place among themselves.
	var am, bm []specs.Mount
	for _, m := range a.Mounts {
		if _, own := ownMounts[m.Destination]; !own && ignoredMounts[m.Destination] == "" {
			am = append(am, m)
		}
	}
	for _, m := range b.Mounts {
		if _, own := ownMounts[m.Destination]; !own {
			if slices.ContainsFunc(am, func(x specs.Mount) bool { return x.Destination == m.Destination }) {
				bm = append(bm, m)
			}
		}
	}
	require.Len(t, bm, len(am), "mounts")
	for i := range am {
		require.Equal(t, am[i].Destination, bm[i].Destination, "mounts")
		require.Equal(t, slices.Contains(am[i].Options, "ro"), slices.Contains(bm[i].Options, "ro"), "mounts: ro")
	}
}

// generate runs "tool spec args..." in a fresh directory as uid (host root
// for 0) and returns the spec it wrote. Without the tool the test skips
// with the remedy, and fails under STOCKADE_REQUIRE_PRIVILEGED=1.
func generate(t *testing.T, uid int, tool string, args ...string) *specs.Spec {
	t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		testutil.Skip(t, tool+" is not installed", "apt-get install "+tool)
	}
	dir, err := os.MkdirTemp("", "stockade-oci-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	cmd := exec.Command(bin, append([]string{"spec"}, args...)...)
	cmd.Dir = dir
	if uid != 0 {
		cmd.SysProcAttr = credential(uid)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s spec: %s", tool, out)
	return readSpec(t, filepath.Join(dir, ConfigFile))
}

func credential(uid int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
}

// errorsAsConfig is errors.As for a *sandbox.ConfigError.
func errorsAsConfig(err error) (*sandbox.ConfigError, bool) {
	var ce *sandbox.ConfigError
	ok := errors.As(err, &ce)
	return ce, ok
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
