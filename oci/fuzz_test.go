//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/sandbox"
)

// FuzzFromSpec feeds FromSpec arbitrary configs: it never panics, every
// error it returns is a *sandbox.ConfigError (or several), and a Config it
// returns survives the trip through ToSpec.
func FuzzFromSpec(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"cwd":"/a/b","args":["x"],"user":{"uid":5,"gid":5}},
		"mounts":[{"destination":"/a","type":"bind","source":"s"},{"destination":"/a/b/c","type":"tmpfs","options":["size=1k","mode=1777"]}],
		"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"time"}],
		"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":3,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]}]},
		"resources":{"memory":{"limit":67108864},"cpu":{"shares":3,"quota":1000},"blockIO":{"weight":500}}}}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		s := new(specs.Spec)
		if json.Unmarshal(data, s) != nil {
			return
		}
		cfg, err := FromSpec(s, dir)
		if err != nil {
			if !errors.Is(err, sandbox.ErrInvalidConfig) {
				t.Fatalf("not a config error: %v", err)
			}
			return
		}
		s2, err := ToSpec(cfg)
		if err != nil {
			t.Fatalf("ToSpec of a Config FromSpec made: %v", err)
		}
		cfg2, err := FromSpec(s2, dir)
		if err != nil {
			t.Fatalf("FromSpec of what ToSpec made: %v", err)
		}
		require.Equal(t, cfg, cfg2)
	})
}
