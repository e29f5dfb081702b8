//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stockade/stockade/internal/testutil"
)

// requireOverlay skips the test where the kernel lacks what Overlay
// needs, with the upper layer on tmpfs or in a directory.
func requireOverlay(t *testing.T, tmpfs bool) {
	t.Helper()
	testutil.RequireUserNamespaces(t)
	u := &overlayUpper{root: os.Geteuid() == 0}
	if !tmpfs {
		u.cfg.Dir = "/"
	}
	testutil.RequireFeature(t, "Overlay", u.supported(), "a newer kernel")
}

// overlayLayers builds two layers by hand, in overlayfs's format: the
// lower a busybox root with /etc/owned (the caller's, 0 for host root, as
// an image unpacked by root holds it), /data/gone and /opq/old; the upper
// hides /data/gone with a whiteout (a character device 0:0, which only
// host root can make; an ordinary user's test goes without) and makes
// /opq opaque with /opq/new.
func overlayLayers(t *testing.T) (lower, upper string, whiteout bool) {
	t.Helper()
	lower = testutil.BusyboxRoot(t)
	for _, d := range []string{"data", "opq"} {
		require.NoError(t, os.Mkdir(filepath.Join(lower, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(lower, "etc", "owned"), []byte("lower\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(lower, "data", "gone"), []byte("gone\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(lower, "opq", "old"), []byte("old\n"), 0o644))

	upper = t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(upper, "data"), 0o755))
	if os.Geteuid() == 0 {
		require.NoError(t, unix.Mknod(filepath.Join(upper, "data", "gone"), unix.S_IFCHR|0o000, 0))
		whiteout = true
	}
	opq := filepath.Join(upper, "opq")
	require.NoError(t, os.Mkdir(opq, 0o755))
	if err := unix.Setxattr(opq, "user.overlay.opaque", []byte("y"), 0); err != nil {
		testutil.Skip(t, "the test's directory takes no user extended attributes: "+err.Error(), "TMPDIR on ext4, xfs, btrfs, or tmpfs from Linux 6.6")
	}
	require.NoError(t, os.WriteFile(filepath.Join(opq, "new"), []byte("new\n"), 0o644))
	// The layers' directories are searchable by every id, as an image's.
	for _, d := range []string{lower, upper} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	return lower, upper, whiteout
}

// overlayScript runs as root inside: it reports what the layers show and
// writes over a lower file (copy-up), a new file and a deletion.
const overlayScript = `
bb=/bin/busybox
if [ -e /data/gone ]; then echo "gone: present"; else echo "gone: hidden"; fi
echo "opq: $($bb ls /opq | $bb tr '\n' ' ')"
echo "owned: $($bb stat -c %u:%g /etc/owned)"
echo "root: $($bb stat -c %u:%g /)"
[ -e /etc/other ] && echo "other: $($bb stat -c %u:%g /etc/other)"
echo written >>/etc/owned
echo "after: $($bb tail -n 1 /etc/owned)"
echo made >/made
$bb rm /opq/new
echo "new owner: $($bb stat -c %u:%g /made)"
`

func TestOverlayRootWritable(t *testing.T) {
	requireOverlay(t, false)
	bothPaths(t, func(t *testing.T) {
		lower, upper, whiteout := overlayLayers(t)
		if os.Geteuid() == 0 {
			// An image's file of another user keeps its ids inside.
			other := filepath.Join(lower, "etc", "other")
			require.NoError(t, os.WriteFile(other, nil, 0o644))
			require.NoError(t, os.Chown(other, 1234, 2345))
		}
		dir := t.TempDir()
		cfg := Config{
			Args:      []string{"/bin/sh", "-c", overlayScript},
			RunAsRoot: true,
			Overlay:   &Overlay{Layers: []string{lower, upper}, Dir: dir},
		}
		var stdout, stderr bytes.Buffer
		cfg.Stdout, cfg.Stderr = &stdout, &stderr
		sb := newSandbox(t, cfg)
		res, err := sb.Run(testCtx(t))
		require.NoError(t, err, "stderr: %s", stderr.String())
		require.True(t, res.Success())
		out := stdout.String()
		if whiteout {
			assert.Contains(t, out, "gone: hidden\n")
		}
		assert.Contains(t, out, "opq: new \n", "the opaque directory hides the lower's files")
		assert.Contains(t, out, "owned: 0:0\n", "the layer's files are root's inside")
		assert.Contains(t, out, "root: 0:0\n")
		if os.Geteuid() == 0 {
			assert.Contains(t, out, "other: 1234:2345\n")
		}
		assert.Contains(t, out, "after: written\n", "root inside writes over a lower file")
		assert.Contains(t, out, "new owner: 0:0\n")

		// The layers are unchanged.
		b, err := os.ReadFile(filepath.Join(lower, "etc", "owned"))
		require.NoError(t, err)
		assert.Equal(t, "lower\n", string(b))
		_, err = os.Stat(filepath.Join(upper, "opq", "new"))
		assert.NoError(t, err)

		// The upper layer holds the changes, with the sandbox's ids on disk.
		up, err := sb.Upper()
		require.NoError(t, err)
		b, err = os.ReadFile(filepath.Join(up, "etc", "owned"))
		require.NoError(t, err)
		assert.Equal(t, "lower\nwritten\n", string(b))
		wantUID, wantGID := 0, 0
		if os.Geteuid() != 0 {
			wantUID, wantGID = os.Geteuid(), os.Getegid()
		}
		assertOwner(t, filepath.Join(up, "made"), wantUID, wantGID)
		assertOwner(t, filepath.Join(up, "etc", "owned"), wantUID, wantGID)
		// The deletion of a lower file is a whiteout.
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(filepath.Join(up, "opq", "new"), &st))
		assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT)
		assert.Equal(t, uint64(0), st.Rdev)

		require.NoError(t, sb.Close())
		_, err = sb.Upper()
		assert.ErrorIs(t, err, ErrFinished)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries, "Close removes the upper layer")
	})
}

func assertOwner(t *testing.T, name string, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(name)
	if !assert.NoError(t, err) {
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, [2]int{uid, gid}, [2]int{int(st.Uid), int(st.Gid)}, "owner of %s", name)
}

func TestOverlayTmpfs(t *testing.T) {
	requireOverlay(t, true)
	bothPaths(t, func(t *testing.T) {
		lower, upper, _ := overlayLayers(t)
		cfg := Config{
			Args:      []string{"/bin/sh", "-c", "echo tmp >/made; echo written >>/etc/owned"},
			RunAsRoot: true,
			Overlay:   &Overlay{Layers: []string{lower, upper}},
		}
		var stderr bytes.Buffer
		cfg.Stderr = &stderr
		sb := newSandbox(t, cfg)
		_, err := sb.Run(testCtx(t))
		require.NoError(t, err, "stderr: %s", stderr.String())
		up, err := sb.Upper()
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(up, "made"))
		require.NoError(t, err)
		assert.Equal(t, "tmp\n", string(b))
		wantUID := 0
		if os.Geteuid() != 0 {
			wantUID = os.Geteuid()
		}
		fi, err := os.Stat(filepath.Join(up, "made"))
		require.NoError(t, err)
		assert.Equal(t, uint32(wantUID), fi.Sys().(*syscall.Stat_t).Uid)
		require.NoError(t, sb.Close())
		_, err = os.Stat(filepath.Join(up, "made"))
		assert.Error(t, err, "the tmpfs is gone after Close")

		// A new sandbox starts from the layers again.
		var stdout bytes.Buffer
		_, err = newSandbox(t, Config{Args: []string{"/bin/sh", "-c", "cat /made 2>&1; cat /etc/owned"}, Stdout: &stdout,
			Overlay: &Overlay{Layers: []string{lower, upper}}}).Run(testCtx(t))
		require.NoError(t, err)
		out := stdout.String()
		assert.NotContains(t, out, "tmp")
		assert.Equal(t, "lower\n", out[strings.LastIndex(out, "lower"):])
	})
}

func TestOverlaySize(t *testing.T) {
	requireOverlay(t, true)
	bothPaths(t, func(t *testing.T) {
		lower, upper, _ := overlayLayers(t)
		cfg := Config{
			Args:      []string{"/bin/sh", "-c", "/bin/busybox dd if=/dev/zero of=/big bs=1024 count=2048 2>&1; echo status $?"},
			Overlay:   &Overlay{Layers: []string{lower, upper}, Size: 1 << 20},
			RunAsRoot: true,
		}
		cfg.Dir = "/"
		var stdout bytes.Buffer
		cfg.Stdout = &stdout
		_, err := newSandbox(t, cfg).Run(testCtx(t))
		require.NoError(t, err)
		out := stdout.String()
		assert.Contains(t, out, "No space left on device")
		assert.NotContains(t, out, "status 0")
	})
}

func TestOverlayKeep(t *testing.T) {
	requireOverlay(t, false)
	bothPaths(t, func(t *testing.T) {
		lower, upper, _ := overlayLayers(t)
		dir := t.TempDir()
		cfg := Config{
			Args:      []string{"/bin/sh", "-c", "echo kept >/kept"},
			RunAsRoot: true,
			Overlay:   &Overlay{Layers: []string{lower, upper}, Dir: dir, Keep: true},
		}
		sb := newSandbox(t, cfg)
		_, err := sb.Run(testCtx(t))
		require.NoError(t, err)
		require.NoError(t, sb.Close())
		up, err := sb.Upper()
		require.NoError(t, err, "a kept upper layer is there after Close")
		b, err := os.ReadFile(filepath.Join(up, "kept"))
		require.NoError(t, err)
		assert.Equal(t, "kept\n", string(b))
		wantUID, wantGID := 0, 0
		if os.Geteuid() != 0 {
			wantUID, wantGID = os.Geteuid(), os.Getegid()
		}
		assertOwner(t, filepath.Join(up, "kept"), wantUID, wantGID)
		// t.TempDir removes it; overlayfs's work/work has mode 0.
		os.Chmod(filepath.Join(filepath.Dir(up), "work", "work"), 0o700)
	})
}

func TestOverlayValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, tc := range []struct {
		field string
		cfg   Config
	}{
		{"Overlay", Config{Args: []string{"x"}, RootDir: dir, Overlay: &Overlay{Layers: []string{dir}}}},
		{"Overlay.Layers", Config{Args: []string{"x"}, Overlay: &Overlay{}}},
		{"Overlay.Layers[1]", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir, "rel"}}}},
		{"Overlay.Layers[2]", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir, dir, dir + "/missing"}}}},
		{"Overlay.Layers[0]", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{file}}}},
		{"Overlay.Keep", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir}, Keep: true}}},
		{"Overlay.Size", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir}, Size: -1}}},
		{"Overlay.Size", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir}, Dir: dir, Size: 1}}},
		{"Overlay.Dir", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir}, Dir: "rel"}}},
		{"Overlay.Dir", Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir}, Dir: dir + "/missing"}}},
	} {
		err := tc.cfg.Validate()
		var ce *ConfigError
		if assert.True(t, errors.As(err, &ce), "%s: %v", tc.field, err) {
			assert.Equal(t, tc.field, ce.Field, "%v", err)
		}
	}
	ok := Config{Args: []string{"x"}, Overlay: &Overlay{Layers: []string{dir}}}
	assert.NoError(t, ok.Validate())
}

// TestOverlayFailedStartLeavesNothing checks that a start that fails
// after the upper layer was made (the command is missing; overlayfs
// refuses the same layer twice) removes it, and that the error names the
// step.
func TestOverlayFailedStartLeavesNothing(t *testing.T) {
	requireOverlay(t, true)
	bothPaths(t, func(t *testing.T) {
		lower, upper, _ := overlayLayers(t)
		for _, tc := range []struct {
			name   string
			layers []string
			args   []string
			stage  string
		}{
			{"missing command", []string{lower, upper}, []string{"/missing"}, "exec"},
			{"the same layer twice", []string{lower, lower}, []string{"/bin/true"}, "overlay"},
		} {
			for _, dir := range []string{"", t.TempDir()} {
				cfg := Config{Args: tc.args, Overlay: &Overlay{Layers: tc.layers, Dir: dir}}
				sb := newSandbox(t, cfg)
				err := sb.Start(testCtx(t))
				var se *SetupError
				if assert.True(t, errors.As(err, &se), "%s: %v", tc.name, err) {
					assert.Equal(t, tc.stage, se.Stage, "%s: %v", tc.name, err)
				}
				_, err = sb.Upper()
				assert.Error(t, err, tc.name)
				if dir != "" {
					entries, err := os.ReadDir(dir)
					require.NoError(t, err)
					assert.Empty(t, entries, "%s: the upper layer is left in %s", tc.name, dir)
				}
			}
		}
	})
}

// TestOverlayUpperWhileRunning reads the upper layer of a long-lived
// sandbox while it runs, after an Exec wrote to it.
func TestOverlayUpperWhileRunning(t *testing.T) {
	requireOverlay(t, true)
	bothPaths(t, func(t *testing.T) {
		lower, upper, _ := overlayLayers(t)
		sb := newSandbox(t, Config{RunAsRoot: true, Overlay: &Overlay{Layers: []string{lower, upper}}})
		_, err := sb.Upper()
		assert.ErrorIs(t, err, ErrNotStarted)
		require.NoError(t, sb.Start(testCtx(t)))
		_, err = sb.Command("/bin/sh", "-c", "echo live >/live").Output(testCtx(t))
		require.NoError(t, err)
		up, err := sb.Upper()
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(up, "live"))
		require.NoError(t, err)
		assert.Equal(t, "live\n", string(b))
		require.NoError(t, sb.Close())
		_, err = os.Stat(up)
		assert.Error(t, err)
	})
}

// TestOverlayProbe checks Probe's overlay root against sandboxes that run
// a command over a busybox layer.
func TestOverlayProbe(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	layer := testutil.BusyboxRoot(t)
	require.NoError(t, os.Chmod(layer, 0o755))
	try := func(dir string) error {
		sb := New(testConfig(Config{Args: []string{"/bin/true"}, Overlay: &Overlay{Layers: []string{layer}, Dir: dir}}))
		defer sb.Close()
		_, err := sb.Run(testCtx(t))
		return err
	}
	dir, err := os.MkdirTemp("", "stockade-test-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	tmpfsErr, dirErr := try(""), try(dir)
	s := probeOverlayRoot(true, true)
	assert.Equal(t, tmpfsErr == nil || dirErr == nil, s.Available, "tmpfs: %v; dir: %v; probe: %s", tmpfsErr, dirErr, s.Detail)
	if tmpfsErr != nil && dirErr == nil {
		assert.Contains(t, s.Detail, "Overlay.Dir) only")
	}
}

// BenchmarkOverlayStart runs /bin/true over the same busybox root three
// ways, interleaved so that the machine's drift touches each alike: a
// plain RootDir, and an Overlay of that directory with the upper layer on
// tmpfs and in a directory. A start is timed until Wait returns; Close,
// which removes the upper layer, comes after. It reports each one's p50 and the overlays'
// p50 minus the plain root's (issue 14's goal: within 0.3 ms).
func BenchmarkOverlayStart(b *testing.B) {
	testutil.RequireUserNamespaces(b)
	root := testutil.BusyboxRoot(b)
	dir := b.TempDir()
	cfgs := []struct {
		name string
		cfg  Config
	}{
		{"rootdir", Config{RootDir: root}},
		{"overlay-tmpfs", Config{Overlay: &Overlay{Layers: []string{root}}}},
		{"overlay-dir", Config{Overlay: &Overlay{Layers: []string{root}, Dir: dir}}},
	}
	runs := make([][]time.Duration, len(cfgs))
	ctx := context.Background()
	for b.Loop() {
		for i, c := range cfgs {
			cfg := testConfig(c.cfg)
			cfg.Args = []string{"/bin/true"}
			t := time.Now()
			sb := New(cfg)
			if err := sb.Start(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := sb.Wait(); err != nil {
				b.Fatal(err)
			}
			runs[i] = append(runs[i], time.Since(t))
			sb.Close()
		}
	}
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	base := p50(runs[0])
	b.ReportMetric(base, "rootdir-p50-ms")
	for i := 1; i < len(cfgs); i++ {
		v := p50(runs[i])
		b.ReportMetric(v, cfgs[i].name+"-p50-ms")
		b.ReportMetric(v-base, cfgs[i].name+"-extra-ms")
	}
}

// TestOverlayConcurrentStarts starts overlay sandboxes from several
// goroutines at once. Host root's starts each clone a child into a user
// namespace for the idmapped layers; a child cloned while another start's
// pipe is open holds a copy of its write end, and when those children
// waited for the end of their pipes, two concurrent starts waited for
// each other for ever.
func TestOverlayConcurrentStarts(t *testing.T) {
	requireOverlay(t, true)
	lower, upper, _ := overlayLayers(t)
	const starters, rounds = 4, 5
	bound := 20 * faultSlack(t)
	ctx := testCtx(t)
	for range rounds {
		errs := make(chan error, starters)
		// Made here: newSandbox may skip the test, which only the
		// test's own goroutine may do.
		var sbs []*Sandbox
		for range starters {
			sbs = append(sbs, newSandbox(t, Config{Args: []string{"/bin/true"}, Overlay: &Overlay{Layers: []string{lower, upper}}}))
		}
		for _, sb := range sbs {
			go func() {
				_, err := sb.Run(ctx)
				errs <- err
			}()
		}
		for range starters {
			select {
			case err := <-errs:
				require.NoError(t, err)
			case <-time.After(bound):
				t.Fatalf("a start over an overlay did not end within %v: concurrent starts wait for each other", bound)
			}
		}
	}
}
