//go:build linux

package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSkipSummary(t *testing.T) {
	skips.Lock()
	saved := skips.count
	skips.count = nil
	skips.Unlock()
	t.Cleanup(func() {
		skips.Lock()
		skips.count = saved
		skips.Unlock()
	})

	assert.Empty(t, skipSummary(), "no line when nothing was skipped")
	recordSkip("needs host root")
	assert.Equal(t, "1 test skipped: needs host root (1)", skipSummary())
	recordSkip("needs a static busybox (apt-get install busybox-static)")
	recordSkip("needs a static busybox (apt-get install busybox-static)")
	assert.Equal(t, "3 tests skipped: needs a static busybox (apt-get install busybox-static) (2); needs host root (1)", skipSummary())

	file := filepath.Join(t.TempDir(), "skips")
	t.Setenv(SkipsFileEnv, file)
	reportSkips()
	reportSkips()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2, "each package appends its line")
	assert.True(t, strings.HasSuffix(lines[0], ": 3 tests skipped: needs a static busybox (apt-get install busybox-static) (2); needs host root (1)"), lines[0])
	assert.True(t, strings.HasPrefix(lines[0], "internal/testutil: "), "named by the package's directory: %s", lines[0])
}

// TestSkipRecorded checks that the guards count what they skip: a
// RequireNonRoot as root always skips, even under
// STOCKADE_REQUIRE_PRIVILEGED=1.
func TestSkipRecorded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RequireNonRoot skips as root only")
	}
	skips.Lock()
	before := skips.count["needs an ordinary user; .ci/run runs the rootless tests as one"]
	skips.Unlock()
	t.Run("guarded", func(t *testing.T) { RequireNonRoot(t) })
	skips.Lock()
	after := skips.count["needs an ordinary user; .ci/run runs the rootless tests as one"]
	skips.Unlock()
	assert.Equal(t, before+1, after)
}

// TestNestedRun checks that a run of the test binary started by one of
// its tests knows it is nested, and the run of go test does not.
func TestNestedRun(t *testing.T) {
	if os.Getenv("STOCKADE_TEST_NESTED_PROBE") == "1" {
		fmt.Printf("nested=%v\n", nestedRun())
		return
	}
	assert.False(t, nestedRun(), "go test runs this binary")
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, "-test.run", "^TestNestedRun$", "-test.v")
	cmd.Env = append(os.Environ(), "STOCKADE_TEST_NESTED_PROBE=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "nested=true")
}
