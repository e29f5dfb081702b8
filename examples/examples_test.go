// Package examples holds the runnable tutorials; this test builds and runs
// each of them.
package examples

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// build compiles the example in dir and returns the binary's path.
func build(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), dir)
	out, err := exec.Command("go", "build", "-o", bin, "./"+dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

func TestHello(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := exec.Command(build(t, "hello")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Contains(t, s, "hello from sandbox, I am uid=1000(sandbox)")
	assert.Contains(t, s, "/usr is read-only")
	assert.Contains(t, s, "the working directory is /work")
	assert.Contains(t, s, "the sandbox exited with status 0")
	assert.NotContains(t, strings.ToLower(s), "permission denied")
}

func TestSession(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := exec.Command(build(t, "session")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Contains(t, s, "1\n2\n3\n")
	assert.Contains(t, s, "the state stays: 1 2 3")
	assert.Contains(t, s, "sleep")
	assert.Contains(t, s, `copied out: "1\n2\n3\n"`)
	assert.Contains(t, s, "the sandbox closed")
}

func TestJudge(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := exec.Command(build(t, "judge")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	verdicts := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, rest, _ := strings.Cut(l, "  ")
		verdicts[strings.TrimSpace(name)] = strings.TrimSpace(rest)
	}
	assert.Contains(t, verdicts["correct"], "accepted")
	assert.Contains(t, verdicts["wrong"], "wrong answer")
	assert.Contains(t, verdicts["crashes"], "runtime error (segmentation fault)")
	assert.Contains(t, verdicts["too slow"], "time limit exceeded")
	assert.Contains(t, verdicts["litters"], "accepted")
	assert.Contains(t, verdicts["sees mess"], "accepted", "the next submission sees a fresh sandbox")
}
