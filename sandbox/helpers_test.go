//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/stockade/stockade/internal/testutil"
)

// output is what a test run of a sandbox printed and how it ended.
type output struct {
	stdout, stderr string
	res            *Result
	err            error
}

// shell returns a config that runs script with the host's static busybox
// shell inside the default sandbox.
func shell(t testing.TB, script string) Config {
	t.Helper()
	bb := testutil.Busybox(t)
	return Config{Args: []string{bb, "sh", "-c", script}}
}

// run runs cfg with a deadline and captures its output. It runs as host
// root or, in the rootless tests, as an ordinary user (see testConfig); a
// test that needs host root says so with testutil.RequireRoot.
func run(t testing.TB, cfg Config) output {
	t.Helper()
	testutil.RequireUserNamespaces(t)
	cfg = testConfig(cfg)
	var stdout, stderr bytes.Buffer
	if cfg.Stdout == nil {
		cfg.Stdout = &stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = &stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := New(cfg).Run(ctx)
	return output{stdout.String(), stderr.String(), res, err}
}

// mustRun runs cfg and fails the test unless the command exits with 0.
func mustRun(t testing.TB, cfg Config) string {
	t.Helper()
	o := run(t, cfg)
	if o.err != nil {
		t.Fatalf("run %q: %v\nstdout:\n%s\nstderr:\n%s", cfg.Args, o.err, o.stdout, o.stderr)
	}
	return o.stdout
}

// lines splits output into trimmed, non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer that a test may read while a sandbox writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// concurrently runs f(0) to f(n-1) at once and fails the test for each
// error they return.
func concurrently(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

// pid1 returns the host pid of a started sandbox's pid 1: its init, or
// its command on the raw path; 0 when nothing was started.
func pid1(sb *Sandbox) int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return pid1Locked(sb)
}

func pid1Locked(sb *Sandbox) int {
	switch {
	case sb.raw != nil:
		return sb.raw.pid
	case sb.cmd != nil && sb.cmd.Process != nil:
		return sb.cmd.Process.Pid
	}
	return 0
}

// rawPathOnly makes the test's sandboxes start on the raw path, whatever
// STOCKADE_START says: the test is about that path.
func rawPathOnly(t *testing.T) {
	t.Helper()
	t.Setenv(startEnv, "raw")
}

// onInitPath makes the test's sandboxes start through the init stage:
// the test is about the init itself.
func onInitPath(t *testing.T) {
	t.Helper()
	t.Setenv(startEnv, "init")
}
