//go:build linux

package sandboxtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
)

// The namespaces kept ready for sandboxes are the process's, not a leak.
func TestMain(m *testing.M) { testutil.MainThen(m, func() { sandbox.DefaultNetworking().Close() }) }

// recordingTB is a testing.TB that records what Start says and does with
// it: its cleanups run when the test calls finish, its failure is set by
// the test, and Fatal and Skip stop nothing but are recorded.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	logs     []string
	fatal    string
	skipped  string
	failed   bool
	cleanups []func()
}

func (r *recordingTB) Helper()          {}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Failed() bool     { return r.failed }
func (r *recordingTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recordingTB) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }

func (r *recordingTB) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func TestStartLongLived(t *testing.T) {
	sb := Start(t, sandbox.Config{})
	require.NotEmpty(t, sb.Dir)
	// The test's directory is the working directory, writable inside.
	out, err := sb.Command(testutil.Busybox(t), "sh", "-c", `pwd; echo hello > greeting; id -u`).Output(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "/work\n1000\n", string(out))
	data, err := os.ReadFile(filepath.Join(sb.Dir, "greeting"))
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(data))
	// It is the test's file, and the test's directory is the sandbox
	// user's own.
	owner := func(name string) [2]uint32 {
		fi, err := os.Lstat(filepath.Join(sb.Dir, name))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		return [2]uint32{st.Uid, st.Gid}
	}
	assert.Equal(t, [2]uint32{uint32(os.Geteuid()), uint32(os.Getegid())}, owner("greeting"))
	// And the test writes what the sandbox reads, and removes what it
	// left in subdirectories.
	require.NoError(t, os.WriteFile(filepath.Join(sb.Dir, "input"), []byte("42\n"), 0o600))
	c := sb.Command(testutil.Busybox(t), "sh", "-c", `cat input; stat -c %u .; mkdir sub && echo x > sub/f && echo ok`)
	out, err = c.Output(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "42\n1000\nok\n", string(out))
	require.NoError(t, os.RemoveAll(filepath.Join(sb.Dir, "sub")))
}

func TestStartCommand(t *testing.T) {
	var stdout bytes.Buffer
	sb := Start(t, sandbox.Config{
		Args:   []string{testutil.Busybox(t), "sh", "-c", `echo result > out; cat out`},
		Stdout: &stdout,
	})
	res, err := sb.Wait()
	require.NoError(t, err)
	assert.Equal(t, sandbox.Exited, res.Reason)
	assert.Equal(t, "result\n", stdout.String())
	assert.FileExists(t, filepath.Join(sb.Dir, "out"))
}

// TestStartOwnDir: a mount of the caller's at the working directory is
// left alone.
func TestStartOwnDir(t *testing.T) {
	m := sandbox.Mount{Kind: sandbox.Tmpfs, Target: "/w", Size: 1 << 20}
	m.UID, m.GID = sandbox.DefaultUID, sandbox.DefaultUID
	sb := Start(t, sandbox.Config{Dir: "/w", Mounts: []sandbox.Mount{m}})
	assert.Empty(t, sb.Dir)
	out, err := sb.Command(testutil.Busybox(t), "sh", "-c", `pwd; touch x && echo ok`).CombinedOutput(t.Context())
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "/w\nok\n", string(out))
}

// TestFailureLog: a failed test's log gets the sandbox's standard error
// and its verdict; a test that passed gets nothing; either way the
// sandbox is closed when the test ends.
func TestFailureLog(t *testing.T) {
	bb := testutil.Busybox(t)
	for _, tc := range []struct {
		name, script string
		failed       bool
		want         []string
	}{
		{"ended", `echo oops >&2; exit 2`, true, []string{"ended: exited with status 2", "oops"}},
		{"running", `echo still >&2; sleep 100`, true, []string{"was still running when the test ended, and was closed: killed by SIGKILL", "still"}},
		{"passed", `echo oops >&2; exit 2`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := &recordingTB{TB: t}
			t.Cleanup(tb.finish) // a failed check leaves no sandbox running
			var stderr bytes.Buffer
			sb := Start(tb, sandbox.Config{Args: []string{bb, "sh", "-c", tc.script}, Stderr: &stderr})
			require.Empty(t, tb.fatal)
			if tc.name != "running" {
				sb.Wait()
			} else {
				// Wait until the command runs and has written.
				require.Eventually(t, func() bool { return len(sb.stderr.Bytes()) > 0 }, testTimeout, pollEvery)
			}
			tb.failed = tc.failed
			tb.finish()
			_, err := sb.Wait()
			assert.Error(t, err, "ended")
			assert.NotEmpty(t, stderr.String(), "the caller's Stderr got it too")
			if tc.want == nil {
				assert.Empty(t, tb.logs)
				return
			}
			require.Len(t, tb.logs, 1)
			assert.Contains(t, tb.logs[0], fmt.Sprintf("sandbox %d ", sb.ID()), "its id, as in its log records")
			for _, w := range tc.want {
				assert.Contains(t, tb.logs[0], w)
			}
		})
	}
}

// TestStartFailed: a missing feature skips, or fails under
// RequirePrivilegedEnv, with the reason and the remedy; any other start
// error fails.
func TestStartFailed(t *testing.T) {
	missing := fmt.Errorf("start: %w", &sandbox.FeatureError{Feature: "user namespaces", Err: errors.New("sysctl user.max_user_namespaces is 0")})
	for _, tc := range []struct {
		name   string
		strict string
		err    error
		skip   bool
	}{
		{"feature", "", missing, true},
		{"feature strict", "1", missing, false},
		{"setup", "", &sandbox.SetupError{Stage: "pivot_root"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(RequirePrivilegedEnv, tc.strict)
			tb := &recordingTB{TB: t}
			startFailed(tb, tc.err)
			if tc.skip {
				assert.Empty(t, tb.fatal)
				assert.Contains(t, tb.skipped, "user namespaces")
				assert.Contains(t, tb.skipped, "stockade probe")
				return
			}
			assert.Empty(t, tb.skipped)
			assert.Contains(t, tb.fatal, tc.err.Error())
			if tc.strict == "1" {
				assert.Contains(t, tb.fatal, RequirePrivilegedEnv+"=1")
			}
		})
	}
	// The same variable as the project's own tests.
	assert.Equal(t, testutil.RequirePrivilegedEnv, RequirePrivilegedEnv)
}

// TestStartBadConfig: a bad config fails the test, naming the field, and
// leaves nothing to clean up.
func TestStartBadConfig(t *testing.T) {
	tb := &recordingTB{TB: t}
	sb := Start(tb, sandbox.Config{Timeout: -1})
	assert.Nil(t, sb)
	assert.Contains(t, tb.fatal, "Timeout")
	assert.Empty(t, tb.cleanups)
}

func TestTail(t *testing.T) {
	var tl tail
	tl.Write([]byte("abc"))
	assert.Equal(t, "abc", string(tl.Bytes()))
	tl.Write([]byte(strings.Repeat("x", tailSize)))
	tl.Write([]byte("end"))
	b := tl.Bytes()
	assert.True(t, strings.HasPrefix(string(b), "[...]\n"))
	assert.True(t, strings.HasSuffix(string(b), "end"))
	assert.Len(t, b, len("[...]\n")+tailSize)
}

// testTimeout bounds a wait that a hung sandbox would make endless;
// pollEvery is how often it looks.
const (
	testTimeout = 10 * time.Second
	pollEvery   = 5 * time.Millisecond
)
