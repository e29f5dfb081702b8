//go:build linux

package mount

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// helperEnv makes the test binary applyHelper; its value is the plan, in
// JSON.
const helperEnv = testutil.HelperEnv

func TestMain(m *testing.M) {
	testutil.Run(m, testutil.Options{Helper: func(plan string) int { applyHelper(plan); return 0 }})
}

// applyHelper runs in a child in new user and mount namespaces: it applies
// the plan and then prints what it finds, one probe per line.
func applyHelper(planJSON string) {
	var p Plan
	if err := json.Unmarshal([]byte(planJSON), &p); err != nil {
		fmt.Println("decode:", err)
		os.Exit(2)
	}
	if err := Apply(&p); err != nil {
		var me *Error
		errors.As(err, &me)
		fmt.Printf("apply error: op=%s path=%s err=%v\n", me.Op, me.Path, me.Err)
		os.Exit(0)
	}
	for _, probe := range strings.Split(os.Getenv("STOCKADE_MOUNT_TEST_PROBES"), ",") {
		op, name, _ := strings.Cut(probe, ":")
		switch op {
		case "read":
			b, err := os.ReadFile(name)
			fmt.Printf("read %s: %q %v\n", name, b, errno(err))
		case "write":
			err := os.WriteFile(name, []byte("w"), 0o644)
			fmt.Printf("write %s: %v\n", name, errno(err))
		case "ls":
			ents, err := os.ReadDir(name)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			fmt.Printf("ls %s: %s %v\n", name, strings.Join(names, " "), errno(err))
		case "link":
			l, err := os.Readlink(name)
			fmt.Printf("link %s: %s %v\n", name, l, errno(err))
		case "stat":
			var st unix.Stat_t
			err := unix.Stat(name, &st)
			fmt.Printf("stat %s: %o %d %v\n", name, st.Mode&0o7777, st.Uid, errno(err))
		}
	}
}

func errno(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// apply runs p in a child in fresh user and mount namespaces, as root
// inside mapped onto an unprivileged host range, and returns its probes.
func apply(t *testing.T, p Plan, probes ...string) []string {
	t.Helper()
	testutil.RequireRoot(t)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{helperEnv + "=" + string(b), "STOCKADE_MOUNT_TEST_PROBES=" + strings.Join(probes, ",")}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1 << 30, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1 << 30, Size: 65536}},
		Credential:  &syscall.Credential{},
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// worldDir returns a temporary directory that the unprivileged ids of the
// helper can reach.
func worldDir(t *testing.T) string {
	d := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(d), 0o755))
	require.NoError(t, os.Chmod(d, 0o755))
	return d
}

func TestApplyKinds(t *testing.T) {
	src := worldDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644))
	p := Plan{Root: Root{Size: 1 << 20}, Mounts: []Mount{
		{Kind: Bind, Source: src, Target: "/in"},
		{Kind: Tmpfs, Target: "/scratch", Size: 1 << 20, Mode: 0o700, UID: 5, GID: 6},
		{Kind: Dir, Target: "/a/b/c", Mode: 0o711},
		{Kind: File, Target: "/etc/motd", Data: []byte("hi"), Mode: 0o640},
		{Kind: Symlink, Source: "in/f", Target: "/f"},
		{Kind: Tmpfs, Target: "/sealed", Size: 4096, Mode: 0o755, ReadOnly: true},
		{Kind: File, Target: "/sealed/note", Data: []byte("n"), Mode: 0o644},
		{Kind: Mask, Target: "/in/f"},
		{Kind: Mask, Target: "/no/such/path"},
	}}
	got := apply(t, p,
		"ls:/", "read:/in/f", "write:/in/new", "write:/scratch/x", "stat:/scratch",
		"stat:/a/b/c", "read:/etc/motd", "stat:/etc/motd", "link:/f", "write:/newfile",
		"read:/sealed/note", "write:/sealed/x")
	assert.Equal(t, []string{
		"ls /: a etc f in scratch sealed ok",
		`read /in/f: "" ok`, // masked by /dev/null
		"write /in/new: EROFS",
		"write /scratch/x: ok",
		"stat /scratch: 700 5 ok",
		"stat /a/b/c: 711 0 ok",
		`read /etc/motd: "hi" ok`,
		"stat /etc/motd: 640 0 ok",
		"link /f: in/f ok",
		"write /newfile: EROFS", // the tmpfs root is sealed read-only
		`read /sealed/note: "n" ok`,
		"write /sealed/x: EROFS",
	}, got)
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "nothing may be written to the read-only source")
}

// TestSymlinkTargetStaysInside is the mount-target symlink class
// (CVE-2021-30465 and others): a given root holds links that point at host
// paths, absolute and relative; mounts whose targets go through them must
// land inside the root, never on the host, or fail.
func TestSymlinkTargetStaysInside(t *testing.T) {
	testutil.RequireRoot(t) // the directory inside is given to the sandbox's ids
	root := worldDir(t)
	host := worldDir(t)
	require.NoError(t, os.Symlink(host, filepath.Join(root, "abs")))
	require.NoError(t, os.Symlink("../../../../../../.."+host, filepath.Join(root, "rel")))
	// The links' text names a directory that exists inside the root too.
	inside := filepath.Join(root, host)
	require.NoError(t, os.MkdirAll(inside, 0o755))
	require.NoError(t, os.Chown(inside, 1<<30, 1<<30))
	p := Plan{Root: Root{Dir: root, Writable: true}, Mounts: []Mount{
		{Kind: Tmpfs, Target: "/abs/x", Size: 4096, Mode: 0o755},
		{Kind: Tmpfs, Target: "/rel/y", Size: 4096, Mode: 0o755},
		{Kind: File, Target: "/abs/file", Data: []byte("f")},
	}}
	got := apply(t, p, "ls:"+host)
	assert.Equal(t, []string{"ls " + host + ": file x y ok"}, got, "the mounts land inside the root, under the link's text")
	assertEmpty(t, host)

	// A link to a path that does not exist inside the root: the mount
	// fails rather than follow it anywhere.
	require.NoError(t, os.RemoveAll(filepath.Join(root, strings.Split(host, "/")[1])))
	got = apply(t, p)
	assert.Equal(t, []string{"apply error: op=tmpfs path=/abs/x err=no such file or directory"}, got)
	assertEmpty(t, host)
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "a mount or file went through a link onto the host")
}

func TestApplyErrors(t *testing.T) {
	got := apply(t, Plan{Mounts: []Mount{{Kind: Bind, Source: "/no/such/dir", Target: "/x"}}})
	assert.Equal(t, []string{"apply error: op=bind path=/no/such/dir err=no such file or directory"}, got)
	got = apply(t, Plan{Root: Root{Dir: "/no/such/root"}})
	assert.Equal(t, []string{"apply error: op=bind path=/no/such/root err=no such file or directory"}, got)
}
