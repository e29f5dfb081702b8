//go:build linux

package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

// subordinateEnv, set to 1, makes the rootless run of the tests use
// SubordinateIDs in every sandbox that run or testConfig starts, so that
// .ci/run can run the same behavioural checks in both rootless modes.
const subordinateEnv = "STOCKADE_TEST_SUBORDINATE_IDS"

// testConfig returns cfg as the tests run it: with SubordinateIDs when the
// tests run as an ordinary user with subordinateEnv set.
func testConfig(cfg Config) Config {
	if os.Geteuid() != 0 && os.Getenv(subordinateEnv) == "1" {
		cfg.SubordinateIDs = true
	}
	return cfg
}

// requireSubIDs skips the test unless the caller has subordinate ids and
// the helpers to map them.
func requireSubIDs(t testing.TB) {
	t.Helper()
	testutil.RequireNonRoot(t)
	_, err := callerSubIDs()
	testutil.RequireFeature(t, "subordinate ids", err, "give the user subordinate ids and install uidmap, as .ci/run does")
}

// commandHostIDs returns the host uid and gid that the command of cfg runs
// as, when run runs it.
func commandHostIDs(t testing.TB, cfg Config) (uint32, uint32) {
	t.Helper()
	cfg = testConfig(cfg)
	d := cfg.withDefaults()
	id, err := d.identity()
	require.NoError(t, err)
	host := func(m []syscall.SysProcIDMap, x int) uint32 {
		for _, e := range m {
			if x >= e.ContainerID && x < e.ContainerID+e.Size {
				return uint32(e.HostID + x - e.ContainerID)
			}
		}
		t.Fatalf("id %d is not mapped by %v", x, m)
		return 0
	}
	return host(id.uidMap, d.UID), host(id.gidMap, d.GID)
}

// TestSubordinateIDs checks the subordinate mapping from the host's side:
// a file the command creates belongs to its own host id (100999 for the
// default range), not to the caller; root inside is the caller; the
// caller's supplementary groups are gone; and a file only the caller may
// read, bound read-only, cannot be read by the command.
func TestSubordinateIDs(t *testing.T) {
	requireSubIDs(t)
	sub, err := callerSubIDs()
	require.NoError(t, err)
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777))
	private := filepath.Join(t.TempDir(), "private")
	require.NoError(t, os.WriteFile(private, []byte("caller only"), 0o600))

	for _, asRoot := range []bool{false, true} {
		cfg := shell(t, `
			cat /proc/self/uid_map /proc/self/gid_map
			grep '^Groups:' /proc/self/status
			touch /out/by-$(id -u)
			cat /private 2>/dev/null || echo private-denied`)
		cfg.SubordinateIDs = true
		cfg.RunAsRoot = asRoot
		cfg.Mounts = []Mount{
			{Kind: "bind", Source: out, Target: "/out", Writable: true},
			{Kind: "bind", Source: private, Target: "/private"},
		}
		l := lines(mustRun(t, cfg))
		require.Len(t, l, 6, l)
		caller := strconv.Itoa(os.Geteuid())
		assert.Equal(t, []string{"0", caller, "1"}, strings.Fields(l[0]))
		assert.Equal(t, []string{"1", strconv.Itoa(int(sub.uid)), strconv.Itoa(int(sub.size))}, strings.Fields(l[1]))
		assert.Equal(t, []string{"0", strconv.Itoa(os.Getegid()), "1"}, strings.Fields(l[2]))
		assert.Equal(t, []string{"1", strconv.Itoa(int(sub.gid)), strconv.Itoa(int(sub.size))}, strings.Fields(l[3]))
		assert.Equal(t, "Groups:", strings.TrimSpace(l[4]), "the caller's supplementary groups must be dropped")
		if asRoot {
			// Root inside is the caller, who may read its own file.
			assert.Equal(t, "caller only", l[5])
		} else {
			assert.Equal(t, "private-denied", l[5], "the command must not act as the caller")
		}
	}

	st := stat(t, filepath.Join(out, "by-1000"))
	assert.Equal(t, sub.uid+999, st.Uid, "uid 1000 inside is the range's id 999")
	assert.Equal(t, sub.gid+999, st.Gid)
	wantUID, wantGID := commandHostIDs(t, Config{Args: []string{"x"}, SubordinateIDs: true})
	assert.Equal(t, wantUID, st.Uid)
	assert.Equal(t, wantGID, st.Gid)
	st = stat(t, filepath.Join(out, "by-0"))
	assert.Equal(t, uint32(os.Geteuid()), st.Uid, "root inside is the caller")
}

func stat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t)
}

// TestOwnIDsOnly checks the zero Config of an ordinary user: only the
// caller's ids are mapped, seen inside as the command's, so the command
// acts as the caller on what is bound in, and nothing else is mapped.
func TestOwnIDsOnly(t *testing.T) {
	testutil.RequireNonRoot(t)
	if os.Getenv(subordinateEnv) == "1" {
		t.Skip("this run of the tests maps subordinate ids; the run without them checks this")
	}
	private := filepath.Join(t.TempDir(), "private")
	require.NoError(t, os.WriteFile(private, []byte("caller only"), 0o600))
	cfg := shell(t, `cat /proc/self/uid_map /proc/self/gid_map; cat /private`)
	cfg.Mounts = []Mount{{Kind: "bind", Source: private, Target: "/private"}}
	assert.Equal(t, []string{
		"1000 " + strconv.Itoa(os.Geteuid()) + " 1",
		"1000 " + strconv.Itoa(os.Getegid()) + " 1",
		"caller only",
	}, normalize(lines(mustRun(t, cfg))))
}

// normalize collapses runs of blanks in each line.
func normalize(ls []string) []string {
	for i, l := range ls {
		ls[i] = strings.Join(strings.Fields(l), " ")
	}
	return ls
}

func TestLookupSubIDs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
		return p
	}
	found := func(name string) (string, error) { return "/opt/bin/" + name, nil }
	missing := func(name string) (string, error) { return "", errors.New("not in PATH") }
	uid := 4242 // no such user: looked up by number
	subuid := write("subuid", "other:200000:65536\n4242:300000:65536\n")
	subgid := write("subgid", "4242:400000:1000\n")
	empty := write("empty", "")

	s, err := lookupSubIDs(uid, subuid, subgid, found)
	require.NoError(t, err)
	assert.Equal(t, subIDs{name: "4242", uid: 300000, gid: 400000, size: 1000,
		newuidmap: "/opt/bin/newuidmap", newgidmap: "/opt/bin/newgidmap"}, s)

	_, err = lookupSubIDs(uid, empty, subgid, found)
	var fe *FeatureError
	require.ErrorAs(t, err, &fe)
	assert.ErrorIs(t, err, ErrNotSupported)
	assert.Contains(t, err.Error(), "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 4242")

	if _, statErr := os.Stat("/usr/bin/newuidmap"); statErr != nil {
		_, err = lookupSubIDs(uid, subuid, subgid, missing)
		require.ErrorAs(t, err, &fe)
		assert.Contains(t, err.Error(), "install the uidmap package")
	}
}

func TestSubordinateIDsConfig(t *testing.T) {
	if os.Geteuid() == 0 {
		// Host root maps onto its own range whatever the field says.
		cfg := Config{Args: []string{"x"}}
		d := cfg.withDefaults()
		want, err := d.identity()
		require.NoError(t, err)
		d.SubordinateIDs = true
		got, err := d.identity()
		require.NoError(t, err)
		assert.Equal(t, want, got)
		return
	}
	requireSubIDs(t)
	sub, _ := callerSubIDs()
	cfg := Config{Args: []string{"x"}, SubordinateIDs: true, UID: int(sub.size) + 1}
	d := cfg.withDefaults()
	_, err := d.identity()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "UID", ce.Field)
}

// BenchmarkRunRootless is BenchmarkRun for an ordinary user, with the
// caller's own ids and with subordinate ids, side by side: the difference
// is the cost of newuidmap and newgidmap, which shows in the "spec" stage
// (the init waits for its spec until the maps are written).
func BenchmarkRunRootless(b *testing.B) {
	testutil.RequireNonRoot(b)
	b.Run("own-ids", func(b *testing.B) {
		benchRun(b, Config{Args: []string{"/bin/true"}})
	})
	b.Run("subordinate-ids", func(b *testing.B) {
		requireSubIDs(b)
		benchRun(b, Config{Args: []string{"/bin/true"}, SubordinateIDs: true})
	})
}
