//go:build linux

package oci

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
)

// runSpec maps spec (with its root replaced by a busybox root and its
// command by script), runs the sandbox and returns the command's output
// lines.
func runSpec(t *testing.T, file, script string, edit func(cfg *sandbox.Config)) []string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireUserNamespaces(t)
	root := testutil.BusyboxRoot(t)
	// A container image's root has /sys, where the sandbox mounts its own.
	require.NoError(t, os.Mkdir(filepath.Join(root, "sys"), 0o755))
	s := readSpec(t, filepath.Join("testdata", file))
	runnable(s, "/work")
	if !slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace }) {
		s.Mounts = removeMount(s.Mounts, "/sys") // see checkGenerated
	}
	s.Root.Path = root
	s.Process.Args = []string{"sh", "-c", script}
	cfg, err := FromSpec(s, t.TempDir())
	require.NoError(t, err)
	if edit != nil {
		edit(&cfg)
	}
	var out bytes.Buffer
	cfg.Stdout, cfg.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := sandbox.New(cfg).Run(ctx)
	require.NoError(t, err, "output: %s", out.String())
	require.Equal(t, sandbox.Exited, res.Reason)
	require.Equal(t, 0, res.ExitCode, "output: %s", out.String())
	return strings.Split(strings.TrimSpace(out.String()), "\n")
}

// TestRunRuncSpec runs the config that "runc spec" writes, with the two
// edits of a non-interactive run, on a busybox root, and checks that the
// sandbox is what the spec asked for.
func TestRunRuncSpec(t *testing.T) {
	script := `echo hello
id -u; id -g
hostname
pwd
ulimit -n
while read -r k v; do [ "$k" = CapEff: ] && echo "$v"; done < /proc/self/status
touch /file 2>/dev/null && echo root writable || echo root read-only
touch /work/file 2>/dev/null && echo work writable || echo work read-only
ls /sys/class/net
for p in ` + strings.Join(maskedPaths, " ") + `; do
	if [ -c "$p" ] || { [ -d "$p" ] && [ -z "$(ls -A "$p")" ]; }; then echo "masked $p"; elif [ -e "$p" ]; then echo "visible $p"; fi
done
for p in ` + strings.Join(readOnlyPaths, " ") + `; do
	while read -r id parent dev root at opts rest; do
		[ "$at" = "$p" ] && [ "${opts%%,*}" = ro ] && echo "read-only $p"
	done < /proc/self/mountinfo
done
true
`
	// Every path this package says the sandbox masks is masked (by
	// /dev/null or an empty tmpfs) where this kernel has it.
	var masked []string
	for _, p := range maskedPaths {
		if _, err := os.Stat(p); err == nil {
			masked = append(masked, "masked "+p)
		}
	}
	// And every path it says it makes read-only is a read-only mount.
	for _, p := range readOnlyPaths {
		if _, err := os.Stat(p); err == nil {
			masked = append(masked, "read-only "+p)
		}
	}
	lines := runSpec(t, "runc-spec.json", script, nil)
	require.Equal(t, append([]string{
		"hello",
		"0", "0", // process.user
		"runc",  // hostname
		"/work", // process.cwd
		"1024",  // RLIMIT_NOFILE
		// CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
		"0000000020000420",
		"root read-only", // root.readonly
		"work read-only", // the root's /work, bound onto itself
		"lo",             // its own network namespace, in its own /sys
	}, masked...), lines)
}

// TestRunRuncRootlessSpec runs the config "runc spec --rootless" writes as
// uid 1000, less its /sys: root inside is host uid 1000, and the network is
// the host's.
func TestRunRuncRootlessSpec(t *testing.T) {
	hostLinks, err := os.ReadDir("/sys/class/net")
	require.NoError(t, err)
	var names []string
	for _, l := range hostLinks {
		names = append(names, l.Name())
	}
	script := `id -u
while read -r inside outside n; do echo "$inside $outside $n"; done < /proc/self/uid_map
ip -o link | while read -r n name rest; do echo "${name%%:*}"; done
`
	lines := runSpec(t, "runc-spec-rootless.json", script, func(cfg *sandbox.Config) {
		require.True(t, cfg.Network.ShareHost)
	})
	require.Equal(t, "0", lines[0])
	require.Equal(t, "0 1000 1", lines[1])
	for i, name := range lines[2:] {
		lines[2+i], _, _ = strings.Cut(name, "@")
	}
	require.ElementsMatch(t, names, lines[2:], "the host's links")
}

// TestRunRootIDMap runs runc's spec, which has no user namespace, on a
// writable root, as host root: the root's files keep their on-disk ids
// inside (RootIDMap), so its root writes there, and what it writes is
// root's on the host, as under runc; a working directory of root's with
// mode 0700 is entered.
func TestRunRootIDMap(t *testing.T) {
	var root string
	lines := runSpec(t, "runc-spec.json", `bb=/bin/busybox; $bb stat -c %u:%g /; touch /file && echo written; $bb mkdir /d && $bb chmod 700 /d && cd /d && echo x > x && pwd`, func(cfg *sandbox.Config) {
		require.True(t, cfg.RootIDMap)
		cfg.WritableRoot = true
		cfg.Dir = "/"
		root = cfg.RootDir
	})
	require.Equal(t, []string{"0:0", "written", "/d"}, lines)
	for _, name := range []string{"file", "d", "d/x"} {
		fi, err := os.Stat(filepath.Join(root, name))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		require.Equal(t, [2]uint32{0, 0}, [2]uint32{st.Uid, st.Gid}, name)
	}
}
