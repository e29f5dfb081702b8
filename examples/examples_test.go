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
