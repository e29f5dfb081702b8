//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// Misuse and bad input: each case used to panic, hang, pass validation and
// fail in setup, or return an error nobody could match.

func TestNewPoolSize(t *testing.T) {
	for _, n := range []int{0, -1, math.MinInt, MaxPoolSize + 1, math.MaxInt} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var p *Pool
			var err error
			require.NotPanics(t, func() { p, err = NewPool(Config{}, n) })
			assert.Nil(t, p)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "n", ce.Field)
			assert.Contains(t, err.Error(), fmt.Sprint(MaxPoolSize))
		})
	}
}

func TestRunWithoutArgs(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	sb := New(testConfig(Config{}))
	t.Cleanup(func() { sb.Close() }) // a failed check leaves no sandbox
	done := make(chan error, 1)
	go func() {
		_, err := sb.Run(context.Background())
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		sb.Close()
		t.Fatal("Run without Args did not return")
	}
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Args", ce.Field)
	assert.Zero(t, pid1(sb), "nothing may be started")

	// The same sandbox still starts explicitly, as a long-lived one.
	require.NoError(t, sb.Start(context.Background()))
	var out bytes.Buffer
	_, err = sb.Exec(context.Background(), Cmd{Args: []string{testutil.Busybox(t), "echo", "hi"}, Stdout: &out})
	require.NoError(t, err)
	assert.Equal(t, "hi\n", out.String())
	require.NoError(t, sb.Close())
	res, err := sb.Wait()
	require.NoError(t, err)
	assert.Equal(t, Closed, res.Reason)
}

func TestKillInvalidSignal(t *testing.T) {
	bad := []syscall.Signal{0, -1, 65, 999, math.MaxInt32}
	sb := New(Config{Args: []string{"/bin/true"}})
	for _, sig := range bad {
		assert.ErrorIs(t, sb.Kill(sig), unix.EINVAL, "signal %d, not started", int(sig))
	}

	testutil.RequireUserNamespaces(t)
	sb = New(testConfig(Config{Args: []string{testutil.Busybox(t), "sleep", "100"}}))
	require.NoError(t, sb.Start(context.Background()))
	defer sb.Close()
	for _, sig := range bad {
		err := sb.Kill(sig)
		assert.ErrorIs(t, err, unix.EINVAL, "signal %d", int(sig))
		assert.Contains(t, fmt.Sprint(err), fmt.Sprint(int(sig)))
	}
	require.NoError(t, sb.Kill(syscall.SIGKILL))
	res, _ := sb.Wait()
	assert.Equal(t, syscall.SIGKILL, res.Signal, "the invalid signals must not have ended it")
}

// TestKillRacesEnd kills sandboxes while their command exits: every Kill
// returns nil or ErrFinished, never an error only its text tells apart.
func TestKillRacesEnd(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	const rounds = 150
	finished := 0
	for range rounds {
		sb := New(testConfig(Config{Args: []string{bb, "true"}}))
		require.NoError(t, sb.Start(context.Background()))
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					err := sb.Kill(sig)
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		sb.Wait()
		for range 2 {
			err := <-errs
			if !assert.ErrorIs(t, err, ErrFinished, "Kill racing the end") {
				return
			}
			finished++
		}
	}
	t.Logf("%d Kill calls reported ErrFinished", finished)
}

// bigArgs returns n arguments of size bytes each, each of its own letter.
func bigArgs(n, size int) []string {
	args := make([]string, n)
	for i := range args {
		args[i] = strings.Repeat(string(rune('a'+i%26)), size)
	}
	return args
}

// countArgs is a script that prints how many arguments it got, their
// total length, the first letter of each and the length of $BIG.
const countArgs = `n=0; for a; do n=$((n+${#a})); done; printf '%s %s ' $# $n; printf %.1s "$@"; echo " ${#BIG}"`

// TestLargeSpec runs a command with 1 MiB of arguments and a large
// environment, more than a packet carries, and checks it saw them all.
func TestLargeSpec(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bb := testutil.Busybox(t)
	args := bigArgs(16, 64<<10)
	big := "BIG=" + strings.Repeat("x", 100<<10)
	want := fmt.Sprintf("16 %d abcdefghijklmnop %d\n", 16*64<<10, 100<<10)
	argv := append([]string{bb, "sh", "-c", countArgs, "sh"}, args...)

	o := run(t, Config{Args: argv, Env: []string{"PATH=/bin", big}})
	require.NoError(t, o.err, "stderr: %s", o.stderr) // not the arguments: a megabyte
	assert.Equal(t, want, o.stdout)

	// The same through Exec, whose requests are packed the same way.
	sb := New(testConfig(Config{}))
	require.NoError(t, sb.Start(context.Background()))
	defer sb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errs bytes.Buffer
	_, err := sb.Exec(ctx, Cmd{Args: argv, Env: []string{"PATH=/bin", big}, Stdout: &out, Stderr: &errs})
	require.NoError(t, err, "stderr: %s", errs.String())
	assert.Equal(t, want, out.String())
}

func TestValidateBadStrings(t *testing.T) {
	long := strings.Repeat("y", maxArgStrlen)
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"NUL in mount source", Config{Mounts: []Mount{
			{Kind: Tmpfs, Target: "/a", Size: 1 << 20},
			{Kind: Bind, Source: "/srv/a", Target: "/b"},
			{Kind: Bind, Source: "/srv\x00/a", Target: "/c"},
		}}, "Mounts[2].Source"},
		{"NUL in mount target", Config{Mounts: []Mount{{Kind: Bind, Source: "/srv", Target: "/x\x00y"}}}, "Mounts[0].Target"},
		{"NUL in Args", Config{Args: []string{"/bin/true", "a\x00b"}}, "Args[1]"},
		{"NUL in Args[0]", Config{Args: []string{"/bin/\x00true"}}, "Args[0]"},
		{"NUL in Env", Config{Env: []string{"A=b\x00c"}}, "Env[0]"},
		{"NUL in Dir", Config{Dir: "/wo\x00rk"}, "Dir"},
		{"NUL in Hostname", Config{Hostname: "a\x00b"}, "Hostname"},
		{"NUL in RootDir", Config{RootDir: "/srv/\x00root"}, "RootDir"},
		{"NUL in Landlock path", Config{Security: Security{Landlock: Landlock{WritablePaths: []string{"/tmp/\x00"}}}}, "Security.Landlock.WritablePaths[0]"},
		{"NUL in CgroupParent", Config{Limits: Limits{CgroupParent: "a\x00b"}}, "Limits.CgroupParent"},
		{"argument longer than execve takes", Config{Args: []string{"/bin/true", long}}, "Args[1]"},
		{"variable longer than execve takes", Config{Env: []string{"A=" + long}}, "Env[0]"},
		{"pids above the kernel's", Config{Limits: Limits{Pids: 1<<62 + 1}}, "Limits.Pids"},
		{"pids just above the kernel's", Config{Limits: Limits{Pids: 1<<22 + 1}}, "Limits.Pids"},
		{"tmpfs inodes", Config{TmpfsInodes: math.MaxInt64}, "TmpfsInodes"},
		{"mount inodes", Config{Mounts: []Mount{{Kind: Tmpfs, Target: "/a", Size: 1 << 20, Inodes: math.MaxInt64}}}, "Mounts[0].Inodes"},
		{"mount uid", Config{Mounts: []Mount{{Kind: Tmpfs, Target: "/a", Size: 1 << 20, UID: 1 << 40}}}, "Mounts[0].UID"},
		{"mount gid", Config{Mounts: []Mount{{Kind: Tmpfs, Target: "/a", Size: 1 << 20, GID: 1<<32 - 1}}}, "Mounts[0].GID"},
		{"uid", Config{UID: 1 << 40}, "UID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Args == nil {
				tt.cfg.Args = []string{"/bin/true"}
			}
			err := tt.cfg.Validate()
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field, "%v", err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestValidateLongestString(t *testing.T) {
	// What execve takes, Validate takes.
	cfg := Config{Args: []string{"/bin/true", strings.Repeat("y", maxArgStrlen-1)}, Limits: testLimits(Limits{Pids: 1 << 22})}
	assert.NoError(t, cfg.Validate())
}

func TestCmdValidation(t *testing.T) {
	cfg := Config{}
	cfg = cfg.withDefaults()
	id := identity{uidMap: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}}
	id.gidMap = id.uidMap
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	many := make([]*os.File, maxExecFiles+1)
	for i := range many {
		many[i] = null
	}
	tests := []struct {
		name  string
		cmd   Cmd
		field string
	}{
		{"no args", Cmd{}, "Cmd.Args"},
		{"NUL in Args", Cmd{Args: []string{"true", "\x00"}}, "Cmd.Args[1]"},
		{"NUL in Env", Cmd{Args: []string{"true"}, Env: []string{"A=\x00"}}, "Cmd.Env[0]"},
		{"NUL in Dir", Cmd{Args: []string{"true"}, Dir: "/\x00"}, "Cmd.Dir"},
		{"too long an argument", Cmd{Args: []string{"true", strings.Repeat("z", maxArgStrlen)}}, "Cmd.Args[1]"},
		{"too many files", Cmd{Args: []string{"true"}, ExtraFiles: many}, "Cmd.ExtraFiles"},
		{"unmapped uid", Cmd{Args: []string{"true"}, UID: 1 << 40}, "Cmd.UID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cmd.request(&cfg, id)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field, "%v", err)
		})
	}
	_, err = (&Cmd{Args: []string{"true"}, ExtraFiles: many[:maxExecFiles]}).request(&cfg, id)
	assert.NoError(t, err)
}
