//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/landlock"
	"github.com/stockade/stockade/internal/seccomp"
	"github.com/stockade/stockade/internal/testutil"
)

// The tests in this file check Config.Security: its validation, the
// Landlock rules and seccomp filters it derives, and, for real, that each
// of its fields does what it says. The attacks that the defaults stop are
// in the attack_*_test.go and attacks_test.go files.

func TestValidateSecurity(t *testing.T) {
	kill := specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActKillProcess}
	tests := []struct {
		name  string
		sec   Security
		field string // empty: valid
		is    error  // an error the ConfigError also matches
	}{
		{"zero", Security{}, "", nil},
		{"kept capability", Security{Capabilities: []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_PTRACE"}}, "", nil},
		{"unknown capability", Security{Capabilities: []string{"CAP_NET_BIND_SERVICE", "CAP_FLY"}}, "Security.Capabilities[1]", nil},
		{"lower-case capability", Security{Capabilities: []string{"cap_chown"}}, "Security.Capabilities[0]", nil},
		{"capability twice", Security{Capabilities: []string{"CAP_CHOWN", "CAP_CHOWN"}}, "Security.Capabilities[1]", nil},
		{"deny-list", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{kill}}}, "", nil},
		{"allow-list", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(unix.ENOSYS),
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow}}}}, "", nil},
		{"extend the default", Security{SeccompExtend: true, Seccomp: &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{kill}}}, "", nil},
		{"unknown syscall", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{kill, {Names: []string{"openat", "fly"}, Action: specs.ActKillProcess}}}},
			"Security.Seccomp.Syscalls[1].Names[1]", seccomp.ErrUnknownSyscall},
		{"no default action", Security{Seccomp: &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{kill}}}, "Security.Seccomp.DefaultAction", nil},
		{"default action with extend", Security{SeccompExtend: true, Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}, "Security.Seccomp.DefaultAction", nil},
		{"rule without action", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}}}}}, "Security.Seccomp.Syscalls[0].Action", nil},
		{"rule without names", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Action: specs.ActKillProcess}}}}, "Security.Seccomp.Syscalls[0].Names", nil},
		{"errno on allow", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActAllow, ErrnoRet: errnoRet(unix.EIO)}}}}, "Security.Seccomp.Syscalls[0].Action", nil},
		{"argument index", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"ioctl"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}},
			"Security.Seccomp.Syscalls[0].Args[0].Index", nil},
		{"argument without op", Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"ioctl"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 1}}}}}},
			"Security.Seccomp.Syscalls[0].Args[0].Op", nil},
		{"two filters", Security{SeccompUnconfined: true, Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}, "Security.Seccomp", nil},
		{"unconfined", Security{SeccompUnconfined: true}, "", nil},
		{"docker profile", Security{SeccompProfile: []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`)}, "", nil},
		{"docker profile, unknown syscall", Security{SeccompProfile: []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["fly"],"action":"SCMP_ACT_ERRNO"}]}`)},
			"Security.SeccompProfile", seccomp.ErrUnknownSyscall},
		{"docker profile, not json", Security{SeccompProfile: []byte(`{`)}, "Security.SeccompProfile", nil},
		{"landlock writable path", Security{Landlock: Landlock{WritablePaths: []string{"/tmp", "/work/out"}}}, "", nil},
		{"landlock path outside the sandbox", Security{Landlock: Landlock{WritablePaths: []string{"/tmp", "/home/user"}}},
			"Security.Landlock.WritablePaths[1]", nil},
		{"landlock path on a read-only mount", Security{Landlock: Landlock{WritablePaths: []string{"/usr/lib"}}},
			"Security.Landlock.WritablePaths[0]", nil},
		{"landlock relative path", Security{Landlock: Landlock{WritablePaths: []string{"tmp"}}}, "Security.Landlock.WritablePaths[0]", nil},
		{"ports with any", Security{Landlock: Landlock{AnyTCP: true, BindTCP: []uint16{80}}}, "Security.Landlock.BindTCP", nil},
		{"ports", Security{Landlock: Landlock{BindTCP: []uint16{8080}, ConnectTCP: []uint16{53}}}, "", nil},
		{"any tcp", Security{Landlock: Landlock{AnyTCP: true}}, "", nil},
		{"disabled with ports", Security{Landlock: Landlock{Disabled: true, ConnectTCP: []uint16{53}}}, "Security.Landlock.Disabled", nil},
		{"disabled and strict", Security{Landlock: Landlock{Disabled: true, Strict: true}}, "Security.Landlock.Disabled", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Args: []string{"/bin/true"}, Security: tc.sec}
			err := cfg.Validate()
			if tc.field == "" {
				assert.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field, "%v", err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
}

// TestBadSecurityStartsNothing checks that a bad Security field stops
// Start before anything is created; testutil.Main fails the package if a
// process, mount or cgroup is left.
func TestBadSecurityStartsNothing(t *testing.T) {
	for _, sec := range []Security{
		{Capabilities: []string{"CAP_FLY"}},
		{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"fly"}, Action: specs.ActKillProcess}}}},
		{Landlock: Landlock{WritablePaths: []string{"/etc/passwd"}}},
	} {
		sb := New(Config{Args: []string{"/bin/true"}, Limits: Limits{Pids: 8}, Security: sec})
		err := sb.Start(t.Context())
		require.ErrorIs(t, err, ErrInvalidConfig)
		_, werr := sb.Wait()
		assert.Equal(t, err, werr)
	}
}

func TestLandlockRulesFromMounts(t *testing.T) {
	rules := func(c Config) map[string]uint64 {
		d := c.withDefaults()
		p := d.plan()
		r := d.landlockRuleset(&p)
		m := map[string]uint64{}
		for _, pr := range r.Paths {
			m[pr.Path] |= pr.Access
		}
		return m
	}
	rw := uint64(landlock.Read | landlock.Write)

	def := rules(Config{})
	assert.Equal(t, uint64(landlock.Read), def["/"], "the root is read-only")
	for _, w := range []string{"/tmp", "/work", "/dev/shm"} {
		assert.Equal(t, rw, def[w], w)
	}
	for _, ro := range []string{"/usr", "/bin", "/etc"} {
		assert.Zero(t, def[ro], "%s is read-only: the rule on / covers it", ro)
	}
	assert.NotZero(t, def["/dev"]&landlock.IoctlDev, "terminals need their ioctls")
	assert.Zero(t, def["/dev"]&landlock.MakeReg, "nothing may be created in /dev")
	assert.Zero(t, def["/proc"]&(landlock.MakeReg|landlock.RemoveFile))

	bind := rules(Config{Mounts: []Mount{
		{Kind: Bind, Source: "/srv/in", Target: "/in"},
		{Kind: Bind, Source: "/srv/out", Target: "/out", Writable: true},
	}})
	assert.Zero(t, bind["/in"])
	assert.Equal(t, rw, bind["/out"])

	root := rules(Config{RootDir: "/srv/root", WritableRoot: true})
	assert.Equal(t, rw, root["/"])

	narrow := rules(Config{Security: Security{Landlock: Landlock{WritablePaths: []string{"/work/out"}}}})
	assert.Equal(t, rw, narrow["/work/out"])
	assert.Zero(t, narrow["/tmp"], "WritablePaths replace the writable mounts")
	assert.Zero(t, narrow["/work"])
}

func TestSeccompFilterCache(t *testing.T) {
	// Errnos are pointers in runtime-spec's form: the cache compares their
	// values.
	a := &Security{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(unix.ENOSYS),
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EIO)}, {Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow}}}}
	f1, err := a.filter()
	require.NoError(t, err)
	b := a.clone() // equal, but another policy value
	f2, err := b.filter()
	require.NoError(t, err)
	assert.Same(t, f1, f2, "an equal policy must reuse the compiled filter")

	*b.Seccomp.Syscalls[0].ErrnoRet = uint(unix.EROFS)
	f3, err := b.filter()
	require.NoError(t, err)
	assert.NotSame(t, f1, f3, "another errno is another filter")
	b.Seccomp.Syscalls[0].Names[0] = "rmdir"
	f4, err := b.filter()
	require.NoError(t, err)
	assert.NotSame(t, f1, f4)
	assert.NotSame(t, f3, f4)

	d1, err := (&Security{}).filter()
	require.NoError(t, err)
	d2, err := (&Security{Capabilities: []string{"CAP_SYS_PTRACE"}}).filter()
	require.NoError(t, err)
	assert.NotEqual(t, d1.data, d2.data, "the default policy depends on the capabilities kept")

	none, err := (&Security{SeccompUnconfined: true}).filter()
	require.NoError(t, err)
	assert.Nil(t, none)
}

// statusLines runs cfg, which prints a /proc/self/status, and returns its
// fields whose names start with one of the prefixes.
func statusLines(t *testing.T, cfg Config, prefixes ...string) map[string]string {
	t.Helper()
	out := mustRun(t, cfg)
	got := map[string]string{}
	for _, l := range lines(out) {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				got[k] = strings.TrimSpace(v)
			}
		}
	}
	return got
}

func TestCapabilitiesDroppedOrKept(t *testing.T) {
	const script = `cat /proc/self/status`
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"none by default", shell(t, script), "0000000000000000"},
		{"none for root either", func() Config { c := shell(t, script); c.RunAsRoot = true; return c }(), "0000000000000000"},
		{"one kept by a user", func() Config {
			c := shell(t, script)
			c.Security.Capabilities = []string{"CAP_NET_BIND_SERVICE"}
			return c
		}(), "0000000000000400"},
		{"one kept by root", func() Config {
			c := shell(t, script)
			c.RunAsRoot = true
			c.Security.Capabilities = []string{"CAP_NET_BIND_SERVICE"}
			return c
		}(), "0000000000000400"},
		{"new privileges allowed", func() Config {
			c := shell(t, script)
			c.Security.AllowNewPrivileges = true
			c.Security.Capabilities = []string{"CAP_NET_BIND_SERVICE"}
			return c
		}(), "0000000000000400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := statusLines(t, tc.cfg, "Cap", "NoNewPrivs", "Seccomp")
			for _, set := range []string{"CapPrm", "CapEff", "CapBnd"} {
				assert.Equal(t, tc.want, st[set], set)
			}
			// Kept ones are ambient too, for root as for any user.
			assert.Equal(t, tc.want, st["CapAmb"], "CapAmb")
			nnp := "1"
			if tc.cfg.Security.AllowNewPrivileges {
				nnp = "0"
			}
			assert.Equal(t, nnp, st["NoNewPrivs"])
			assert.Equal(t, "2", st["Seccomp"], "a seccomp filter")
		})
	}
}

// TestKeptCapabilityWorks binds port 80 as an ordinary user inside, which
// only CAP_NET_BIND_SERVICE allows, with and without it.
func TestKeptCapabilityWorks(t *testing.T) {
	const script = `timeout 1 nc -l -p 80 2>&1; echo status $?`
	// Landlock allows port 80, so that only the capability decides.
	cfg := shell(t, script)
	cfg.Security.Landlock.BindTCP = []uint16{80}
	denied := mustRun(t, cfg)
	assert.Contains(t, denied, "Permission denied")
	cfg.Security.Capabilities = []string{"CAP_NET_BIND_SERVICE"}
	kept := mustRun(t, cfg)
	assert.NotContains(t, kept, "Permission denied")
	assert.Contains(t, kept, "status 143", "nc listened until timeout killed it")
}

func TestSeccompPolicies(t *testing.T) {
	mkdirRule := func(a specs.LinuxSeccompAction, errno unix.Errno) specs.LinuxSyscall {
		r := specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: a}
		if errno != 0 {
			r.ErrnoRet = errnoRet(errno)
		}
		return r
	}
	const script = `exec mkdir /tmp/d`
	t.Run("kill", func(t *testing.T) {
		cfg := shell(t, script)
		cfg.Security.SeccompExtend = true
		cfg.Security.Seccomp = &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{mkdirRule(specs.ActKillProcess, 0)}}
		o := run(t, cfg)
		var ee *ExitError
		require.ErrorAs(t, o.err, &ee, "%s", o.stderr)
		assert.Equal(t, SeccompKilled, o.res.Reason, o.res.String())
		assert.Equal(t, unix.SIGSYS, o.res.Signal)
		assert.Equal(t, "killed by the seccomp filter (SIGSYS)", o.res.String())
	})
	t.Run("errno in a deny-list", func(t *testing.T) {
		cfg := shell(t, script)
		cfg.Security.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{mkdirRule(specs.ActErrno, unix.EROFS)}}
		o := run(t, cfg)
		require.Error(t, o.err)
		assert.Equal(t, Exited, o.res.Reason)
		assert.Contains(t, o.stderr, "Read-only file system")
	})
	t.Run("docker profile", func(t *testing.T) {
		cfg := shell(t, script)
		cfg.Security.SeccompProfile = []byte(`{"defaultAction":"SCMP_ACT_ALLOW",
			"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":18}]}`)
		o := run(t, cfg)
		require.Error(t, o.err)
		assert.Contains(t, strings.ToLower(o.stderr), unix.EXDEV.Error())
	})
	t.Run("the default allows it", func(t *testing.T) {
		mustRun(t, shell(t, script))
	})
	t.Run("a signal is not the filter", func(t *testing.T) {
		// SIGSYS from elsewhere, with no filter at all, stays a signal.
		cfg := shell(t, `kill -SYS $$`)
		cfg.Security.SeccompUnconfined = true
		o := run(t, cfg)
		require.Error(t, o.err)
		assert.Equal(t, Signaled, o.res.Reason)
	})
}

func TestSeccompUnconfined(t *testing.T) {
	cfg := shell(t, `cat /proc/self/status`)
	cfg.Security.SeccompUnconfined = true
	st := statusLines(t, cfg, "Seccomp", "NoNewPrivs", "CapEff")
	assert.Equal(t, "0", st["Seccomp"], "no filter")
	assert.Equal(t, "1", st["NoNewPrivs"], "no_new_privs holds without a filter")
	assert.Equal(t, "0000000000000000", st["CapEff"])
}

// runConfined runs cfg, which must succeed, and returns what the sandbox
// reported of its defences once started, its Result and its output.
func runConfined(t *testing.T, cfg Config) (Confinement, *Result, string) {
	t.Helper()
	var out syncBuffer
	cfg.Stdout = &out
	sb := New(cfg)
	require.NoError(t, sb.Start(t.Context()))
	conf := sb.Confinement()
	res, err := sb.Wait()
	require.NoError(t, err, "%v", res)
	return conf, res, out.String()
}

func requireLandlock(t *testing.T, abi int) {
	t.Helper()
	var err error
	if got := landlock.ABI(); got < abi {
		err = fmt.Errorf("this kernel's Landlock ABI is %d", got)
	}
	testutil.RequireFeature(t, fmt.Sprintf("Landlock ABI %d", abi), err, "boot a kernel new enough, with landlock in the lsm= list")
}

func TestLandlockConfinement(t *testing.T) {
	requireLandlock(t, 6)
	testutil.RequireUserNamespaces(t)
	cfg := testConfig(shell(t, `
		echo a > /work/a && echo wrote work
		echo b > /tmp/b && echo wrote tmp
		mkdir /work/out && echo c > /work/out/c && echo wrote out`))
	cfg.Security.Landlock.Strict = true
	conf, res, out := runConfined(t, cfg)
	assert.True(t, conf.Landlock)
	assert.True(t, conf.LandlockScoped)
	assert.True(t, conf.LandlockTCP, "TCP is limited by default")
	assert.GreaterOrEqual(t, conf.LandlockABI, 6)
	assert.Equal(t, "default", conf.Seccomp)
	assert.Positive(t, conf.SeccompInstructions)
	assert.Empty(t, conf.Notes)
	assert.Empty(t, res.Notes)
	assert.ElementsMatch(t, []string{"wrote work", "wrote tmp", "wrote out"}, lines(out))

	// Only /work is writable: /tmp, a writable mount, is not.
	narrow := shell(t, `
		echo a > /work/a && echo wrote work
		echo b > /tmp/b && echo wrote tmp
		true`)
	narrow.Security.Landlock.WritablePaths = []string{"/work"}
	o := run(t, narrow)
	require.NoError(t, o.err, o.stderr)
	assert.Equal(t, []string{"wrote work"}, lines(o.stdout))
	assert.Contains(t, o.stderr, "Permission denied")
}

func TestLandlockTCP(t *testing.T) {
	requireLandlock(t, 4)
	script := `timeout 1 nc -l -p 8080 2>&1; echo status $?`
	o := run(t, shell(t, script))
	require.NoError(t, o.err, o.stderr)
	assert.Contains(t, o.stdout, "Permission denied", "bind on a port not allowed, by default")

	for _, l := range []Landlock{{BindTCP: []uint16{8080}, Strict: true}, {AnyTCP: true}} {
		cfg := shell(t, script)
		cfg.Security.Landlock = l
		o = run(t, cfg)
		require.NoError(t, o.err, o.stderr)
		assert.NotContains(t, o.stdout, "Permission denied", "%+v", l)
		assert.Contains(t, o.stdout, "status 143", "nc listened until timeout killed it")
	}
}

func TestLandlockDisabled(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	cfg := testConfig(shell(t, `true`))
	cfg.Security.Landlock.Disabled = true
	conf, _, _ := runConfined(t, cfg)
	assert.False(t, conf.Landlock)
	assert.Empty(t, conf.Notes)
}

func TestSysfs(t *testing.T) {
	cfg := shell(t, `
		ls /sys/class/net
		ls /sys/firmware | wc -l
		(echo 1 > /sys/kernel/profiling) 2>/dev/null && echo wrote sys
		true`)
	cfg.Security.Sysfs = true
	out := lines(mustRun(t, cfg))
	require.Len(t, out, 2, "%q", out)
	assert.Equal(t, "lo", out[0], "only the sandbox's own network devices")
	assert.Equal(t, "0", out[1], "/sys/firmware is masked")
	_, err := os.Stat("/sys/firmware")
	require.NoError(t, err, "the host's /sys is untouched")
}

// TestLandlockBestEffort asks for everything Landlock can do and checks
// that best effort enforces what this kernel's ABI offers, says what it
// left out, and that Strict refuses to start with less. CI runs it on the
// host's kernel and on Linux 6.1 (ABI 2) in a VM.
func TestLandlockBestEffort(t *testing.T) {
	requireLandlock(t, 1)
	testutil.RequireUserNamespaces(t)
	abi := landlock.ABI()
	cfg := testConfig(shell(t, `echo x > /work/x && cat /work/x`))
	cfg.Security.Landlock = Landlock{ConnectTCP: []uint16{443}}
	conf, res, out := runConfined(t, cfg)
	assert.Equal(t, "x", strings.TrimSpace(out))
	assert.Equal(t, abi, conf.LandlockABI)
	assert.Equal(t, abi >= 2, conf.Landlock, "file system rules need ABI 2 (refer)")
	assert.Equal(t, abi >= 4, conf.LandlockTCP)
	assert.Equal(t, abi >= 6, conf.LandlockScoped)
	assert.Equal(t, conf.Notes, res.Notes, "what best effort left out is in the Result too")
	if abi >= 6 {
		assert.Empty(t, conf.Notes)
	} else {
		assert.NotEmpty(t, conf.Notes)
	}

	cfg.Security.Landlock.Strict = true
	cfg.Stdout = nil
	o := run(t, cfg)
	if abi >= 6 {
		require.NoError(t, o.err)
		return
	}
	var fe *FeatureError
	require.ErrorAs(t, o.err, &fe)
	assert.ErrorIs(t, o.err, ErrNotSupported)
	assert.Contains(t, fe.Error(), "Landlock")
}

// errnoRet returns e as a runtime-spec errno.
func errnoRet(e unix.Errno) *uint {
	u := uint(e)
	return &u
}
