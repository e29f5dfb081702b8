//go:build linux

package sandbox

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// TestSharedHostMounts runs the tests that bind host directories and use a
// root directory again in a mount namespace whose mounts are shared, as
// systemd makes the host's: what a sandbox mounts on its copies of them
// must not appear on the host (the leak checks of the inner run fail if
// it does).
func TestSharedHostMounts(t *testing.T) {
	testutil.RequireRoot(t)
	if os.Getenv("STOCKADE_TEST_SHARED_MOUNTS") == "1" {
		t.Skip("already in the shared namespace")
	}
	unshare, err := exec.LookPath("unshare")
	testutil.RequireFeature(t, "unshare(1)", err, "apt-get install util-linux")
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(unshare, "--mount", "--propagation", "shared", "--", self,
		"-test.run", "^(TestReadOnlySystemAndBinds|TestNetworkRootDir)$", "-test.count=1")
	cmd.Env = append(os.Environ(), "STOCKADE_TEST_SHARED_MOUNTS=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "PASS")
}
