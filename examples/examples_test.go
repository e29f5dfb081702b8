//go:build linux

// Package examples holds the runnable tutorials; this test builds and runs
// each of them.
package examples

import (
	"os"
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

func TestCluster(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.Busybox(t)
	out, err := exec.Command(build(t, "cluster")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Regexp(t, `app sees:\n10\.214\.\d+\.\d+\tdb\nhello from db\n`, s)
	assert.Contains(t, s, "loner cannot reach db")
	assert.Contains(t, s, "the host hears: hello from db")
}

// rootlessUserEnv names the ordinary user that runs the rootless example
// when the tests run as root (.ci/run creates it).
const rootlessUserEnv = "STOCKADE_TEST_ROOTLESS_USER"

// TestRootless builds the rootless example and runs it as an ordinary
// user: directly when the tests run as one, else as the user that
// rootlessUserEnv names, with setpriv.
func TestRootless(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	dir, err := os.MkdirTemp("", "stockade-example-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The user must reach and run the binary.
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "rootless")
	out, err := exec.Command("go", "build", "-o", bin, "./rootless").CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command(bin)
	if os.Geteuid() == 0 {
		user := os.Getenv(rootlessUserEnv)
		if user == "" {
			testutil.Skip(t, rootlessUserEnv+" names no ordinary user to run the example as", "create one with subordinate ids and set it, as .ci/run does")
		}
		cmd = exec.Command("setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "--reset-env", bin)
	}
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Contains(t, s, "user namespaces: yes, ordinary user")
	assert.Contains(t, s, "inside I am uid=1000(sandbox)")
	assert.Regexp(t, `own ids:\n(.*\n)*the file it wrote belongs to host uid \d+, gid \d+ \(the caller\)`, s)
	if strings.Contains(s, "subordinate ids: yes") {
		assert.Regexp(t, `subordinate ids:\n(.*\n)*the file it wrote belongs to host uid \d+, gid \d+ \(not the caller\)`, s)
	} else if testutil.Strict() {
		t.Errorf("the user has no subordinate ids:\n%s", s)
	}
}

func TestImage(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := exec.Command(build(t, "image")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Contains(t, s, "the image's command says: hello from the image, I am app in /home/app\n")
	assert.Contains(t, s, "root changed the image in /home/app\n")
	assert.Regexp(t, `saved box:tooled \(sha256:[0-9a-f]{12}\), 2 layers`, s)
	assert.Contains(t, s, "box:tooled: tool 1.0\ncat: can't open '/etc/motd': No such file or directory\n")
	assert.Contains(t, s, "box:1 again: no tool\nwelcome to box\n")
}
