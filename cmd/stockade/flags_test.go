//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
)

func TestMain(m *testing.M) {
	// --net link sets up the process-wide networking; release it first.
	testutil.MainThen(m, func() { sandbox.DefaultNetworking().Close() })
}

// parseRun parses the flags and command of "stockade run" into a Config.
func parseRun(args ...string) (sandbox.Config, *runOptions, error) {
	var o runOptions
	p := newParser("run")
	o.define(p)
	rest, err := p.parse(args)
	if err != nil {
		return sandbox.Config{}, &o, err
	}
	cfg, err := o.config(rest)
	return cfg, &o, err
}

func TestParseRun(t *testing.T) {
	cfg, _, err := parseRun(
		"--rootfs", "/srv/root", "--writable-rootfs",
		"--bind", "/data", "/data", "--ro-bind", "/etc/ssl", "/etc/ssl", "--tmpfs", "/scratch",
		"--tmpfs-size", "16m", "--chdir", "/data", "--env", "A=1,2", "--setenv", "B", "two words",
		"--hostname", "box", "--user", "1234:55", "--time-namespace", "--time-limit", "1.5",
		"--memory", "256m", "--cpus", "0.5", "--pids", "64", "--cpu-time", "2s", "--output-limit", "1k",
		"--", "/bin/sh", "-c", "echo --bind",
	)
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/sh", "-c", "echo --bind"}, cfg.Args)
	assert.Equal(t, "/srv/root", cfg.RootDir)
	assert.True(t, cfg.WritableRoot)
	assert.Equal(t, []sandbox.Mount{
		{Kind: sandbox.Bind, Source: "/data", Target: "/data", Writable: true},
		{Kind: sandbox.Bind, Source: "/etc/ssl", Target: "/etc/ssl"},
		{Kind: sandbox.Tmpfs, Target: "/scratch", Size: 16 << 20, Mode: 0o755, UID: 1234, GID: 55},
	}, cfg.Mounts)
	assert.EqualValues(t, 16<<20, cfg.TmpfsSize)
	assert.Equal(t, "/data", cfg.Dir)
	assert.Equal(t, []string{
		"PATH=" + sandbox.DefaultPath, "HOME=/data", "USER=sandbox", "LOGNAME=sandbox", "A=1,2", "B=two words",
	}, cfg.Env)
	assert.Equal(t, "box", cfg.Hostname)
	assert.Equal(t, 1234, cfg.UID)
	assert.Equal(t, 55, cfg.GID)
	assert.False(t, cfg.RunAsRoot)
	assert.True(t, cfg.TimeNamespace)
	assert.Equal(t, 1500*time.Millisecond, cfg.Timeout)
	assert.Equal(t, sandbox.Limits{
		Memory: 256 << 20, CPU: 0.5, Pids: 64, CPUTime: 2 * time.Second, Output: 1024,
	}, cfg.Limits)
}

func TestParseRunDefaults(t *testing.T) {
	cfg, _, err := parseRun("true")
	require.NoError(t, err)
	assert.Equal(t, sandbox.Config{
		Args: []string{"true"},
		Env:  sandbox.DefaultEnv("sandbox", sandbox.DefaultDir),
	}, cfg, "no flag changes nothing but the environment, which is the default one")

	cfg, _, err = parseRun("--root", "--clearenv", "--env", "PATH=/bin", "--env", "PATH=/sbin", "--tmpfs", "/t", "--", "id")
	require.NoError(t, err)
	assert.True(t, cfg.RunAsRoot)
	assert.Zero(t, cfg.UID)
	assert.Equal(t, []string{"PATH=/sbin"}, cfg.Env, "--clearenv drops the defaults; a later --env wins")
	assert.Equal(t, sandbox.Mount{Kind: sandbox.Tmpfs, Target: "/t", Size: sandbox.DefaultTmpfsSize, Mode: 0o755}, cfg.Mounts[0],
		"a tmpfs of root's, of the default size")

	cfg, _, err = parseRun("--user", "0", "id")
	require.NoError(t, err)
	assert.True(t, cfg.RunAsRoot, "--user 0 is --root")

	cfg, _, err = parseRun("--user", "7", "--tmpfs", "/t", "id")
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.GID, "the group defaults to the uid's number")
	assert.Equal(t, 7, cfg.Mounts[0].UID)

	cfg, _, err = parseRun("--rootfs", "rel/dir", "--bind", "src", "/dst", "x")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(cfg.RootDir, "/") && strings.HasSuffix(cfg.RootDir, "/rel/dir"), cfg.RootDir)
	assert.True(t, strings.HasPrefix(cfg.Mounts[0].Source, "/") && strings.HasSuffix(cfg.Mounts[0].Source, "/src"))
	assert.Equal(t, []string{"x"}, cfg.Args, "the command may follow the flags without --")
}

func TestParseRunErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the message, which must name the flag
	}{
		{[]string{"--memory", "12q", "true"}, `"--memory"`},
		{[]string{"--memory", "-1", "true"}, `"--memory"`},
		{[]string{"--output-limit", "x", "true"}, `"--output-limit"`},
		{[]string{"--time-limit", "soon", "true"}, `"--time-limit"`},
		{[]string{"--cpu-time", "-2s", "true"}, `"--cpu-time"`},
		{[]string{"--cpus", "many", "true"}, `"--cpus"`},
		{[]string{"--pids", "1.5", "true"}, `"--pids"`},
		{[]string{"--user", "bob", "true"}, `"--user"`},
		{[]string{"--user", "1:x", "true"}, `"--user"`},
		{[]string{"--user", "0:5", "true"}, "--user"},
		{[]string{"--user", "5:0", "true"}, "--user"},
		{[]string{"--user", "5", "--root", "true"}, "--root and --user"},
		{[]string{"--nope", "true"}, "--nope"},
		{[]string{"--bind", "/a"}, "--bind needs two arguments"},
		{[]string{"--bind", "/a", "--", "true"}, "--bind needs two arguments"},
		{[]string{"--ro-bind", "/a", "--tmpfs", "/b", "true"}, "--ro-bind"},
		{[]string{"--setenv", "A"}, "--setenv needs two arguments"},
		{[]string{"--hostname", "box"}, "missing the command"},
	} {
		_, _, err := parseRun(tc.args...)
		if assert.Error(t, err, "%q", tc.args) {
			assert.ErrorIs(t, err, errUsage)
			assert.Contains(t, err.Error(), tc.want, "%q", tc.args)
		}
	}
}

// TestConfigErrorNamesFlag: a field that the sandbox rejects is reported
// under the flag that set it, with status 2, before anything starts.
func TestConfigErrorNamesFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hostname", "a b", "true"}, "stockade run: --hostname: must hold only"},
		{[]string{"--chdir", "rel", "true"}, "stockade run: --chdir: must be an absolute"},
		{[]string{"--chdir", "/", "true"}, "stockade run: --chdir: must not be the root"},
		{[]string{"--tmpfs", "/x", "--ro-bind", "/etc", "etc", "true"}, "stockade run: --ro-bind /etc etc: DST: must be an absolute path"},
		{[]string{"--tmpfs", "/x/../y", "true"}, "stockade run: --tmpfs /x/../y: DST: must be a clean path"},
		{[]string{"--pids", "3", "true"}, "stockade run: --pids: 3 is below the minimum"},
		{[]string{"--env", "novalue", "true"}, "stockade run: --env: must have the form KEY=value"},
		{[]string{"--writable-rootfs", "true"}, "stockade run: --writable-rootfs: needs RootDir"},
		{[]string{"--", "a\x00b"}, "stockade run: the command: must not contain a NUL"},
	} {
		var out, errOut bytes.Buffer
		status := run(append([]string{"run"}, tc.args...), stdio{nil, &out, &errOut})
		assert.Equal(t, exitUsage, status, "%q: %s", tc.args, errOut.String())
		assert.Contains(t, errOut.String(), tc.want, "%q", tc.args)
		assert.Contains(t, errOut.String(), "Run 'stockade run --help' for usage.")
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "512k": 512 << 10, "512K": 512 << 10, "64m": 64 << 20, "64MiB": 64 << 20,
		"64mb": 64 << 20, "1g": 1 << 30, "1.5g": 3 << 29, "2t": 2 << 40,
	} {
		got, err := parseSize(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "k", "-1m", "1x", "0x10", "1e3", "inf", "nan", "1_000", "1gg", "99999999999t"} {
		_, err := parseSize(in)
		assert.Error(t, err, "%q", in)
	}
	for n, want := range map[int64]string{1 << 20: "1m", 3 << 29: "1536m", 1000: "1000", 2 << 30: "2g"} {
		assert.Equal(t, want, formatSize(n))
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"2s": 2 * time.Second, "300ms": 300 * time.Millisecond, "1m30s": 90 * time.Second,
		"2": 2 * time.Second, "0.25": 250 * time.Millisecond, "0": 0,
	} {
		got, err := parseDuration(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "soon", "-1s", "-3", "1e400", "nan", "0x10"} {
		_, err := parseDuration(in)
		assert.Error(t, err, "%q", in)
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		res  sandbox.Result
		want int
	}{
		{sandbox.Result{Reason: sandbox.Exited, ExitCode: 0}, 0},
		{sandbox.Result{Reason: sandbox.Exited, ExitCode: 42}, 42},
		{sandbox.Result{Reason: sandbox.Signaled, ExitCode: -1, Signal: 15}, 143},
		{sandbox.Result{Reason: sandbox.Timeout, ExitCode: -1, Signal: 9}, 137},
		{sandbox.Result{Reason: sandbox.CPUTimeLimit, ExitCode: 3}, 3},
		{sandbox.Result{Reason: sandbox.Cancelled, ExitCode: -1}, exitSetup},
	} {
		assert.Equal(t, tc.want, exitStatus(&tc.res), "%+v", tc.res)
	}
}

func TestCommandLine(t *testing.T) {
	var out, errOut bytes.Buffer
	io := stdio{nil, &out, &errOut}
	assert.Equal(t, exitUsage, run(nil, io))
	assert.Contains(t, errOut.String(), "stockade run [flags]")

	errOut.Reset()
	assert.Equal(t, exitUsage, run([]string{"frob"}, io))
	assert.Contains(t, errOut.String(), `stockade: unknown command "frob"`)

	out.Reset()
	assert.Equal(t, 0, run([]string{"version"}, io))
	assert.Regexp(t, `^stockade \S+ .*go1\.\d+.* linux/`, out.String())

	out.Reset()
	assert.Equal(t, 0, run([]string{"run", "--help"}, io))
	help := out.String()
	for _, want := range []string{"--rootfs DIR", "--bind SRC DST", "--ro-bind SRC DST", "--tmpfs DST",
		"--memory SIZE", "--time-limit DURATION", "--user UID[:GID]", "Examples:", "stockade run --rootfs"} {
		assert.Contains(t, help, want)
	}

	out.Reset()
	assert.Equal(t, 0, run([]string{"help", "run"}, io))
	assert.Equal(t, help, out.String())

	errOut.Reset()
	assert.Equal(t, exitUsage, run([]string{"probe", "extra"}, io))
	assert.Contains(t, errOut.String(), `unexpected argument "extra"`)
}

func TestParseRunBwrapFlags(t *testing.T) {
	cfg, o, err := parseRun("--dev-bind", "/dev/fuse", "/dev/fuse", "--cap-add", "net_raw", "--cap-add", "CAP_CHOWN",
		"--json=out.json", "--", "true")
	require.NoError(t, err)
	assert.Equal(t, []sandbox.Mount{{Kind: sandbox.Bind, Source: "/dev/fuse", Target: "/dev/fuse", Writable: true, Device: true}}, cfg.Mounts)
	assert.Equal(t, []string{"CAP_NET_RAW", "CAP_CHOWN"}, cfg.Security.Capabilities)
	assert.True(t, o.json)
	assert.Equal(t, "out.json", o.jsonTo)
	assert.Equal(t, "--cap-add", o.flagFor("Security.Capabilities[1]"))

	cfg, o, err = parseRun("--symlink", "usr/bin", "/bin2", "--", "true")
	require.NoError(t, err)
	assert.Equal(t, []sandbox.Mount{{Kind: sandbox.Symlink, Source: "usr/bin", Target: "/bin2"}}, cfg.Mounts)
	assert.Equal(t, "--symlink usr/bin /bin2: DST", o.flagFor("Mounts[0].Target"))

	_, o, err = parseRun("--json", "--", "true")
	require.NoError(t, err)
	assert.True(t, o.json)
	assert.Equal(t, "fd:2", o.jsonTo, "--json alone is stderr, as before")
	_, o, err = parseRun("--json=out", "--json=false", "--", "true")
	require.NoError(t, err)
	assert.False(t, o.json)

	for _, args := range [][]string{
		{"--file", "x", "/a", "--", "true"},
		{"--bind-data", "-1", "/a", "--", "true"},
		{"--json=fd:-3", "--", "true"},
		{"--json=", "--", "true"},
		{"--bundle", ".", "--cap-add", "CAP_CHOWN"},
	} {
		_, _, err := parseRun(args...)
		assert.ErrorIs(t, err, errUsage, "%q", args)
	}
}
