//go:build linux

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/stockade/stockade/sandbox"
)

// FuzzRunArgs feeds "stockade run" arbitrary arguments (NUL separates
// them): parsing never panics, every error is a usage error, and a config
// that the sandbox rejects is blamed on a flag, never on a bare field name.
func FuzzRunArgs(f *testing.F) {
	for _, seed := range []string{
		"true",
		"--bind\x00/a\x00/b\x00--\x00sh",
		"--bind\x00/a\x00--ro-bind\x00/b\x00/c\x00x",
		"--tmpfs\x00rel\x00--user\x00-1\x00true",
		"--memory\x001.5g\x00--cpus\x00-2\x00--pids\x001\x00true",
		"--env\x00=x\x00--setenv\x00\x00v\x00true",
		"--hostname\x00\xff\x00--chdir\x00/\x00true",
		"--time-limit\x00-1\x00--cpu-time\x001e9\x00--output-limit\x00-0\x00x",
		"-v\x00--json\x00--root\x00--user\x000:0\x00x",
		"--cgroup-parent\x00../x\x00--memory\x0010m\x00x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, o, err := parseRun(strings.Split(s, "\x00")...)
		if err != nil {
			if !errors.Is(err, errUsage) {
				t.Fatalf("%q: not a usage error: %v", s, err)
			}
			return
		}
		var ce *sandbox.ConfigError
		if err := cfg.Validate(); errors.As(err, &ce) {
			if name := o.flagFor(ce.Field); !strings.HasPrefix(name, "--") && name != "the command" {
				t.Fatalf("%q: field %s is blamed on no flag: %v", s, ce.Field, err)
			}
		}
	})
}
