// Package sandboxtest starts sandboxes for tests. Start gives a test a
// running sandbox whose working directory is the test's own t.TempDir(),
// writable from inside and readable by the test, ends it when the test
// ends, and adds to a failed test's log what the sandbox wrote to standard
// error and how it ended. On a host that lacks a feature the sandbox
// needs (user namespaces, say) the test is skipped with the reason and the
// remedy, or fails instead when STOCKADE_REQUIRE_PRIVILEGED=1, so that CI
// never passes by skipping.
//
// A test runs commands in the sandbox with the methods of
// sandbox.Sandbox, which Sandbox embeds: Command (with Output,
// CombinedOutput and the pipes, as in os/exec) and Exec for a sandbox
// without a command of its own, Wait for one with a command.
package sandboxtest

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"sync"
	"testing"

	"github.com/stockade/stockade/sandbox"
)

// RequirePrivilegedEnv is the environment variable that turns the skip of
// a test on a host lacking a feature into a failure. CI sets it to 1.
const RequirePrivilegedEnv = "STOCKADE_REQUIRE_PRIVILEGED"

// Sandbox is a sandbox started for a test by Start.
type Sandbox struct {
	*sandbox.Sandbox
	// Dir is the host directory bound writable at the sandbox's working
	// directory (Config.Dir, /work by default): a fresh t.TempDir(), or ""
	// when one of Config.Mounts targets the working directory itself.
	Dir string

	stderr *tail
	done   chan struct{} // closed once the sandbox has ended
	res    *sandbox.Result
	err    error
}

// Start starts a sandbox for cfg, for the test tb, and returns it
// running; cfg without Args makes a long-lived sandbox for Command and
// Exec. When the test ends, the sandbox is closed (a command still
// running is killed), and if the test failed, its log gets how the
// sandbox ended and the last 64 KiB it wrote to standard error (also
// passed on to cfg.Stderr, if set).
//
// The test's directory is bound writable, and what the command creates
// there lands on the host as the test's own: host root's sandbox binds it
// through an idmapped mount whose Owner is root (see
// sandbox.Config.Mounts: the command may then leave files of root's
// there, set-user-ID ones too, which the test's cleanup removes), and an
// ordinary user's sandbox with its own ids writes as that user. With
// SubordinateIDs, an ordinary user's sandbox writes as a subordinate id,
// a stranger to the directory: it is then made writable by every id (mode
// 0777; t.TempDir() keeps its parent private, 0700), its files belong to
// the command's host id, and the test cannot remove what the command left
// in subdirectories: set RunAsRoot then (root inside is the caller).
//
// A start that fails because the host lacks a feature skips the test
// (fails it under STOCKADE_REQUIRE_PRIVILEGED=1); any other failure
// fails it. Start calls tb.Fatal, so it must be called from the test's
// goroutine.
func Start(tb testing.TB, cfg sandbox.Config) *Sandbox {
	tb.Helper()
	s := &Sandbox{stderr: &tail{}, done: make(chan struct{})}
	dir := cfg.Dir
	if dir == "" {
		dir = sandbox.DefaultDir
	}
	if !targeted(cfg.Mounts, dir) {
		s.Dir = tb.TempDir()
		if cfg.SubordinateIDs && os.Geteuid() != 0 {
			if err := os.Chmod(s.Dir, 0o777); err != nil {
				tb.Fatalf("sandboxtest: %v", err)
			}
		}
		m := sandbox.Mount{Kind: sandbox.Bind, Source: s.Dir, Target: dir, Writable: true}
		if os.Geteuid() == 0 {
			m.Owner = &sandbox.Owner{}
		}
		cfg.Mounts = append([]sandbox.Mount{m}, cfg.Mounts...)
	}
	if cfg.Stderr != nil {
		cfg.Stderr = &tee{cfg.Stderr, s.stderr}
	} else if len(cfg.Args) > 0 {
		cfg.Stderr = s.stderr
	}
	s.Sandbox = sandbox.New(cfg)
	// Not the test's context: that ends before the cleanups run, and the
	// verdict would always be "cancelled".
	if err := s.Sandbox.Start(context.Background()); err != nil {
		startFailed(tb, err)
		return nil
	}
	go func() {
		s.res, s.err = s.Sandbox.Wait()
		close(s.done)
	}()
	tb.Cleanup(func() { s.end(tb) })
	return s
}

// Wait waits for the sandbox to end and returns its Result, as
// sandbox.Sandbox.Wait does.
func (s *Sandbox) Wait() (*sandbox.Result, error) {
	<-s.done
	return s.res, s.err
}

// end closes the sandbox and, for a failed test, logs how it ended.
func (s *Sandbox) end(tb testing.TB) {
	ended := false
	select {
	case <-s.done:
		ended = true
	default:
	}
	s.Close()
	<-s.done
	if !tb.Failed() {
		return
	}
	verdict := "ended"
	if !ended {
		verdict = "was still running when the test ended, and was closed"
	}
	if s.res != nil {
		verdict += ": " + s.res.String()
	}
	var ee *sandbox.ExitError
	if s.err != nil && !errors.As(s.err, &ee) {
		verdict += ": " + s.err.Error()
	}
	if b := s.stderr.Bytes(); len(b) > 0 {
		tb.Logf("sandbox %d %s; its standard error:\n%s", s.ID(), verdict, b)
	} else {
		tb.Logf("sandbox %d %s", s.ID(), verdict)
	}
}

// targeted reports whether one of ms is mounted at dir.
func targeted(ms []sandbox.Mount, dir string) bool {
	for _, m := range ms {
		if path.Clean(m.Target) == path.Clean(dir) {
			return true
		}
	}
	return false
}

// startFailed skips or fails the test for a Start that returned err.
func startFailed(tb testing.TB, err error) {
	tb.Helper()
	if !errors.Is(err, sandbox.ErrNotSupported) {
		tb.Fatalf("sandboxtest: start: %v", err)
		return
	}
	msg := "sandboxtest: " + err.Error() + " (sandbox.Probe, or `stockade probe`, says what this host offers and how to turn it on)"
	if os.Getenv(RequirePrivilegedEnv) == "1" {
		tb.Fatalf("%s; the test must run because %s=1", msg, RequirePrivilegedEnv)
		return
	}
	tb.Skip(msg)
}

// tailSize is how much of the end of its standard error Start keeps.
const tailSize = 64 << 10

// tail keeps the last tailSize bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	cut bool // bytes before buf were dropped
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := append([]byte(nil), t.buf...)
	if t.cut {
		b = append([]byte("[...]\n"), b...)
	}
	return b
}

// tee writes to the caller's writer and to the tail; the caller's errors
// are the copy's.
type tee struct {
	w    io.Writer
	tail *tail
}

func (t *tee) Write(p []byte) (int, error) {
	t.tail.Write(p)
	return t.w.Write(p)
}
