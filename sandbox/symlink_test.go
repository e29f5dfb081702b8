//go:build linux

package sandbox

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
)

func symlinkEntry(src, dst string) Mount {
	return Mount{Kind: Symlink, Source: src, Target: dst}
}

// Config.Mounts takes Symlink entries, made in a tmpfs of the sandbox:
// at the generated root, in /tmp, in the working directory and in a
// Tmpfs entry, relative and absolute, on both start paths.
func TestConfigSymlink(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	bothStarts(t, func(t *testing.T) {
		cfg := testConfig(Config{
			Args: []string{"/bin/sh", "-c", `for l in /hn /tmp/l /work/rel /scratch/deep/l; do
				echo "$l -> $(readlink $l)"; done; cat /hn /tmp/l`},
			Mounts: []Mount{
				symlinkEntry("/etc/hostname", "/hn"),
				symlinkEntry("../etc/hostname", "/tmp/l"),
				symlinkEntry("relative/text", "/work/rel"),
				{Kind: Tmpfs, Target: "/scratch", Size: 1 << 20, Mode: 0o755},
				symlinkEntry("/x", "/scratch/deep/l"),
			},
		})
		out, err := New(cfg).Output(context.Background())
		var ee *ExitError
		if errors.As(err, &ee) {
			t.Logf("stderr: %s", ee.Stderr)
		}
		require.NoError(t, err)
		want := "/hn -> /etc/hostname\n/tmp/l -> ../etc/hostname\n/work/rel -> relative/text\n/scratch/deep/l -> /x\nsandbox\nsandbox\n"
		assert.Equal(t, want, string(out))
	})
}

func TestConfigSymlinkInvalid(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"relative target", Config{Mounts: []Mount{symlinkEntry("x", "tmp/l")}}, "Mounts[0].Target"},
		{"root", Config{Mounts: []Mount{symlinkEntry("x", "/")}}, "Mounts[0].Target"},
		{"no text", Config{Mounts: []Mount{symlinkEntry("", "/tmp/l")}}, "Mounts[0].Source"},
		{"over /tmp", Config{Mounts: []Mount{symlinkEntry("x", "/tmp")}}, "Mounts[0].Target"},
		{"over the working directory", Config{Mounts: []Mount{symlinkEntry("x", "/work")}}, "Mounts[0].Target"},
		{"above /dev/pts", Config{Mounts: []Mount{symlinkEntry("x", "/dev")}}, "Mounts[0].Target"},
		{"over a generated file", Config{Mounts: []Mount{symlinkEntry("x", "/etc/passwd")}}, "Mounts[0].Target"},
		{"over a bind", Config{Mounts: []Mount{{Kind: Bind, Source: "/etc", Target: "/host"}, symlinkEntry("x", "/host")}}, "Mounts[1].Target"},
		{"over a later bind", Config{Mounts: []Mount{symlinkEntry("x", "/host"), {Kind: Bind, Source: "/etc", Target: "/host"}}}, "Mounts[0].Target"},
		{"above a later bind", Config{Mounts: []Mount{symlinkEntry("/etc", "/a"), {Kind: Bind, Source: "/etc", Target: "/a/b"}}}, "Mounts[0].Target"},
		{"hidden by a later tmpfs", Config{Mounts: []Mount{symlinkEntry("x", "/s/l"), {Kind: Tmpfs, Target: "/s", Size: 1 << 20}}}, "Mounts[0].Target"},
		{"in a host directory", Config{Mounts: []Mount{{Kind: Bind, Source: "/etc", Target: "/host", Writable: true}, symlinkEntry("x", "/host/l")}}, "Mounts[1].Target"},
		{"in read-only /usr", Config{Mounts: []Mount{symlinkEntry("x", "/usr/l")}}, "Mounts[0].Target"},
		{"in /proc", Config{Mounts: []Mount{symlinkEntry("x", "/proc/l")}}, "Mounts[0].Target"},
		{"in RootDir", Config{RootDir: "/", Mounts: []Mount{symlinkEntry("x", "/l")}}, "Mounts[0].Target"},
		{"beneath a link", Config{Mounts: []Mount{symlinkEntry("/tmp", "/t"), symlinkEntry("x", "/t/l")}}, "Mounts[0].Target"},
		{"too long", Config{Mounts: []Mount{symlinkEntry(string(make([]byte, 4096)), "/tmp/l")}}, "Mounts[0].Source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Args = []string{"true"}
			err := c.cfg.Validate()
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, c.field, ce.Field, "%v", err)
		})
	}
	// Accepted: in the root, in /tmp, in the working directory, in a
	// tmpfs given, and in /tmp of a given root.
	for _, cfg := range []Config{
		{Mounts: []Mount{symlinkEntry("x", "/l")}},
		{Mounts: []Mount{symlinkEntry("x", "/tmp/a/b")}},
		{Dir: "/src", Mounts: []Mount{symlinkEntry("x", "/src/l")}},
		{Mounts: []Mount{{Kind: Tmpfs, Target: "/s", Size: 1 << 20}, symlinkEntry("x", "/s/l")}},
		{RootDir: "/", Mounts: []Mount{symlinkEntry("x", "/tmp/l")}},
	} {
		cfg.Args = []string{"true"}
		assert.NoError(t, cfg.Validate(), "%+v", cfg.Mounts)
	}
}
