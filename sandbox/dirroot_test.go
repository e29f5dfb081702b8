//go:build linux

package sandbox

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// TestDirRootOfRootDir: with RootDir, Dir may be "/" (an OCI spec's usual
// process.cwd): the command starts at the top of the given root, which no
// tmpfs covers.
func TestDirRootOfRootDir(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	root := testutil.BusyboxRoot(t)
	out := mustRun(t, Config{Args: []string{"/bin/sh", "-c", "echo $PWD; ls"}, RootDir: root, Dir: "/"})
	l := lines(out)
	require.NotEmpty(t, l)
	assert.Equal(t, "/", l[0])
	assert.Contains(t, l, "bin", "the root file system is not covered")
}
