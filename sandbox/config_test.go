//go:build linux

package sandbox

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	ok := func(c Config) Config {
		if c.Args == nil {
			c.Args = []string{"/bin/true"}
		}
		return c
	}
	tests := []struct {
		name  string
		cfg   Config
		field string // empty: valid
	}{
		{"minimal", ok(Config{}), ""},
		{"everything", ok(Config{
			Env: []string{"A=1"}, Dir: "/home/x", Hostname: "a-b.c", Timeout: time.Second,
			UID: 2000, GID: 3000, IDMap: IDMap{HostUID: 100000, HostGID: 100000, Size: 65536},
			RootDir: "/srv/root", WritableRoot: true, TmpfsSize: 1 << 20, TmpfsInodes: 10,
			TimeNamespace: true,
			Mounts: []Mount{
				{Kind: Bind, Source: "/data", Target: "/data"},
				{Kind: Bind, Source: "/out", Target: "/out", Writable: true},
				{Kind: Tmpfs, Target: "/scratch", Size: 1 << 20},
			},
		}), ""},
		{"root", ok(Config{RunAsRoot: true}), ""},
		{"no args: long-lived", Config{}, ""},
		{"stdin without a command", Config{Stdin: os.Stdin}, "Stdin"},
		{"empty command", Config{Args: []string{""}}, "Args"},
		{"nul in arg", Config{Args: []string{"a", "b\x00"}}, "Args[1]"},
		{"env without =", ok(Config{Env: []string{"A=1", "B"}}), "Env[1]"},
		{"env empty key", ok(Config{Env: []string{"=x"}}), "Env[0]"},
		{"relative dir", ok(Config{Dir: "work"}), "Dir"},
		{"unclean dir", ok(Config{Dir: "/a/../b"}), "Dir"},
		{"root dir as workdir", ok(Config{Dir: "/"}), "Dir"},
		{"negative ptys", ok(Config{Ptys: -1}), "Ptys"},
		{"too many ptys", ok(Config{Ptys: 1<<20 + 1}), "Ptys"},
		{"root dir as workdir of a given root", ok(Config{Dir: "/", RootDir: "/srv/root"}), ""},
		{"hostname chars", ok(Config{Hostname: "a b"}), "Hostname"},
		{"hostname length", ok(Config{Hostname: string(make([]byte, 65))}), "Hostname"},
		{"negative timeout", ok(Config{Timeout: -1}), "Timeout"},
		{"root with uid", ok(Config{RunAsRoot: true, UID: 5}), "UID"},
		{"negative uid", ok(Config{UID: -2}), "UID"},
		{"idmap with host root", ok(Config{IDMap: IDMap{HostUID: 0, HostGID: 1, Size: 10}}), "IDMap.HostUID"},
		{"idmap gid host root", ok(Config{IDMap: IDMap{HostUID: 1, HostGID: 0, Size: 10}}), "IDMap.HostGID"},
		{"idmap no size", ok(Config{IDMap: IDMap{HostUID: 1, HostGID: 1}}), "IDMap.Size"},
		{"idmap too small", ok(Config{IDMap: IDMap{HostUID: 1, HostGID: 1, Size: 100}}), "IDMap.Size"},
		{"idmap overflow", ok(Config{IDMap: IDMap{HostUID: 1<<32 - 10, HostGID: 1, Size: 65536}}), "IDMap.Size"},
		{"relative rootdir", ok(Config{RootDir: "root"}), "RootDir"},
		{"writable without root", ok(Config{WritableRoot: true}), "WritableRoot"},
		{"root id map without root", ok(Config{RootIDMap: true}), "RootIDMap"},
		{"negative tmpfs", ok(Config{TmpfsSize: -1}), "TmpfsSize"},
		{"negative inodes", ok(Config{TmpfsInodes: -1}), "TmpfsInodes"},
		{"mount kind", ok(Config{Mounts: []Mount{{Kind: "proc", Target: "/p"}}}), "Mounts[0].Kind"},
		{"mount no kind", ok(Config{Mounts: []Mount{{Target: "/p"}}}), "Mounts[0].Kind"},
		{"mount relative source", ok(Config{Mounts: []Mount{{Kind: Bind, Source: "x", Target: "/x"}}}), "Mounts[0].Source"},
		{"mount no source", ok(Config{Mounts: []Mount{{Kind: Bind, Target: "/x"}}}), "Mounts[0].Source"},
		{"mount relative target", ok(Config{Mounts: []Mount{{Kind: Bind, Source: "/x", Target: "x"}}}), "Mounts[0].Target"},
		{"mount root target", ok(Config{Mounts: []Mount{{Kind: Bind, Source: "/x", Target: "/"}}}), "Mounts[0].Target"},
		{"mount unclean target", ok(Config{Mounts: []Mount{{Kind: Bind, Source: "/x", Target: "/a/"}}}), "Mounts[0].Target"},
		{"tmpfs negative size", ok(Config{Mounts: []Mount{
			{Kind: Tmpfs, Target: "/a", Size: 1},
			{Kind: Tmpfs, Target: "/b", Size: -1},
		}}), "Mounts[1].Size"},
		{"device on a tmpfs", ok(Config{Mounts: []Mount{{Kind: Tmpfs, Target: "/a", Device: true}}}), "Mounts[0].Device"},
		{"tmpfs source with a comma", ok(Config{Mounts: []Mount{{Kind: Tmpfs, Source: "a,b", Target: "/a", Size: 1}}}), "Mounts[0].Source"},
		{"writable tmpfs flag", ok(Config{Mounts: []Mount{{Kind: Tmpfs, Target: "/a", Size: 1, Writable: true}}}), "Mounts[0].Writable"},
		{"bind with size", ok(Config{Mounts: []Mount{{Kind: Bind, Source: "/s", Target: "/a", Size: 1}}}), "Mounts[0].Size"},
		{"nil extra file", ok(Config{ExtraFiles: []*os.File{nil}}), "ExtraFiles[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field, err.Error())
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.field+":")
		})
	}
}

func TestDefaults(t *testing.T) {
	d := (&Config{Args: []string{"x"}}).withDefaults()
	assert.Equal(t, "/work", d.Dir)
	assert.Equal(t, "sandbox", d.Hostname)
	assert.Equal(t, 1000, d.UID)
	assert.Equal(t, 1000, d.GID)
	assert.Equal(t, []string{"PATH=" + DefaultPath, "HOME=/work", "USER=sandbox", "LOGNAME=sandbox"}, d.Env)
	r := (&Config{Args: []string{"x"}, RunAsRoot: true}).withDefaults()
	assert.Equal(t, 0, r.UID)
	assert.Contains(t, r.Env, "USER=root")
}

func TestNewCopiesConfig(t *testing.T) {
	args := []string{"a", "b"}
	sb := New(Config{Args: args})
	args[0] = "changed"
	assert.Equal(t, "a", sb.cfg.Args[0])
}

func TestSubordinate(t *testing.T) {
	f := t.TempDir() + "/subuid"
	require.NoError(t, os.WriteFile(f, []byte("alice:100000:65536\nroot:200000:1000\n# junk\nbad\n"), 0o644))
	start, size := subordinate(f, []string{"root", "0"})
	assert.Equal(t, uint32(200000), start)
	assert.Equal(t, uint32(1000), size)
	start, _ = subordinate(f, []string{"nobody"})
	assert.Zero(t, start)
}

func TestResultString(t *testing.T) {
	assert.Equal(t, "exited with status 0", (&Result{Reason: Exited}).String())
	assert.Equal(t, "timed out after 2s", (&Result{Reason: Timeout, Wall: 2 * time.Second}).String())
	assert.Equal(t, "cancelled", (&Result{Reason: Cancelled}).String())
	b, err := Reason(Timeout).MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "timeout", string(b))
	assert.True(t, errors.Is(&ExitError{Result: &Result{}, cause: errors.ErrUnsupported}, errors.ErrUnsupported))
}

// FuzzValidate checks that Validate never panics and that whatever it
// accepts can be turned into a plan that mount's own validation accepts.
func FuzzValidate(f *testing.F) {
	f.Add("/bin/true", "/work", "box", "/data", "/data", "bind", int64(0), false)
	f.Add("x", "", "", "rel", "/t", "tmpfs", int64(10), true)
	f.Fuzz(func(t *testing.T, arg, dir, host, src, dst, kind string, size int64, root bool) {
		cfg := Config{
			Args: []string{arg}, Dir: dir, Hostname: host, RunAsRoot: root,
			Mounts: []Mount{{Kind: MountKind(kind), Source: src, Target: dst, Size: size}},
		}
		if cfg.Validate() != nil {
			return
		}
		d := cfg.withDefaults()
		p := d.plan()
		if err := p.Validate(); err != nil {
			t.Fatalf("Validate accepted %+v but its plan is invalid: %v", cfg, err)
		}
	})
}
