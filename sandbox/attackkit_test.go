//go:build linux

package sandbox

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// attackEnv names a prebuilt attack program (testdata/attack), for runs
// of the tests where the go command is not at hand, such as the rootless
// ones that .ci/rootless starts.
const attackEnv = "STOCKADE_TEST_ATTACK"

// attackDir is the directory the attack program is built into, once per
// test process; removeAttackDir removes it after the tests.
var (
	attackOnce sync.Once
	attackDir  string
	attackPath string
	attackErr  error
)

func removeAttackDir() {
	if attackDir != "" {
		os.RemoveAll(attackDir)
	}
}

// attackProgram returns the host path of the static attack program,
// building it on first use.
func attackProgram(t testing.TB) string {
	t.Helper()
	attackOnce.Do(func() {
		if p := os.Getenv(attackEnv); p != "" {
			attackPath = p
			return
		}
		dir, err := os.MkdirTemp("", "stockade-attack-")
		if err != nil {
			attackErr = err
			return
		}
		attackDir = dir
		// The init of a sandbox, an unprivileged id on the host, must reach
		// it.
		if attackErr = os.Chmod(dir, 0o755); attackErr != nil {
			return
		}
		out := filepath.Join(dir, "attack")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/attack")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			attackErr = err
			attackPath = string(b)
			return
		}
		attackPath = out
	})
	if attackErr != nil {
		testutil.Skip(t, "cannot build the attack program: "+attackErr.Error()+"\n"+attackPath,
			"install Go, or set "+attackEnv+" to a program built with CGO_ENABLED=0 go build ./sandbox/testdata/attack")
	}
	return attackPath
}

// attackTarget is where the attack program is inside a sandbox.
const attackTarget = "/attack"

// attack returns a config that runs the attack program with args in the
// default sandbox, as root inside unless asRoot is false.
func attack(t testing.TB, args ...string) Config {
	t.Helper()
	prog := attackProgram(t)
	return Config{
		Args:      append([]string{attackTarget}, args...),
		RunAsRoot: true,
		Mounts:    []Mount{{Kind: Bind, Source: prog, Target: attackTarget}},
	}
}

// steps are the outcomes an attack printed: step name → outcome ("ok" or
// an errno name) and detail.
type steps map[string][2]string

func parseSteps(out string) steps {
	s := steps{}
	for _, l := range lines(out) {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 3 || f[0] != "step" {
			continue
		}
		var detail string
		if len(f) == 4 {
			detail = f[3]
		}
		s[f[1]] = [2]string{f[2], detail}
	}
	return s
}

// runAttack runs cfg, which must exit on its own, and returns its steps.
func runAttack(t testing.TB, cfg Config) (steps, output) {
	t.Helper()
	o := run(t, cfg)
	if o.err != nil {
		t.Logf("attack %q: %v\nstderr:\n%s", cfg.Args, o.err, o.stderr)
	}
	t.Logf("attack %q:\n%s", cfg.Args, o.stdout)
	return parseSteps(o.stdout), o
}

// mustAttack runs cfg, which must exit with status 0, checks that every
// step in want had its outcome, and returns all the steps.
func mustAttack(t testing.TB, cfg Config, want map[string]string) steps {
	t.Helper()
	st, o := runAttack(t, cfg)
	require.NoError(t, o.err)
	st.expect(t, want)
	return st
}

// expect checks that every named step had the given outcome.
func (s steps) expect(t testing.TB, want map[string]string) {
	t.Helper()
	for name, outcome := range want {
		got, ok := s[name]
		if !assert.True(t, ok, "step %s did not run", name) {
			continue
		}
		assert.Equal(t, outcome, got[0], "step %s (%s)", name, got[1])
	}
}

// dirHolds checks that the host directory dir holds just the entries
// names.
func dirHolds(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, names, got, "the host directory %s changed", dir)
}

// How long the host check waits for a sandbox's leftovers to go, and how
// often it looks.
const (
	testDeadline = 30 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// hostState is what an attack must leave on the host as it found it.
type hostState struct {
	items map[string][]string
}

// snapshotHost records the host's mounts, this process's children, the
// network links, and the kernel settings that attacks go for.
func snapshotHost(t testing.TB) hostState {
	t.Helper()
	h := hostState{items: map[string][]string{}}
	for _, c := range append(slices.Clone(testutil.DefaultLeakChecks), testutil.NetworkLeakChecks...) {
		if c.Name == "file descriptor" {
			continue // the test's own files come and go
		}
		items, err := c.Snapshot()
		require.NoError(t, err, c.Name)
		h.items[c.Name] = items
	}
	for _, f := range []string{"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sys/kernel/modprobe"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a kernel built without it
		}
		require.NoError(t, err)
		h.items[f] = []string{string(b)}
	}
	return h
}

// check fails the test if the host differs from the snapshot. Processes a
// sandbox leaves are reaped within moments, so it looks again for a while.
func (h hostState) check(t testing.TB) {
	t.Helper()
	var now hostState
	require.Eventually(t, func() bool {
		now = snapshotHost(t)
		for k, v := range h.items {
			if !slices.Equal(v, now.items[k]) {
				return false
			}
		}
		return true
	}, testDeadline, pollEvery, "the host changed")
	for k, v := range h.items {
		assert.Equal(t, v, now.items[k], "host %s changed", k)
	}
}
