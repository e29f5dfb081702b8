//go:build linux

package oci_test

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stockade/stockade/oci"
	"github.com/stockade/stockade/sandbox"
)

// A spec maps to a Config; what the sandbox cannot honour is refused by
// its path in the spec.
func ExampleFromSpec() {
	spec := &specs.Spec{
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "web",
		Process: &specs.Process{
			Args: []string{"/bin/server", "--port", "80"},
			Cwd:  "/srv",
			User: specs.User{UID: 33, GID: 33},
			Env:  []string{"PATH=/bin"},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
			Sysctl:     map[string]string{"vm.swappiness": "10"},
		},
	}
	_, err := oci.FromSpec(spec, "/var/lib/bundles/web")
	var ce *sandbox.ConfigError
	if errors.As(err, &ce) {
		fmt.Println("refused:", ce.Field)
	}

	spec.Linux.Sysctl = nil
	cfg, err := oci.FromSpec(spec, "/var/lib/bundles/web")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Args, cfg.UID, cfg.Hostname, cfg.RootDir)
	// The working directory keeps what the root file system holds there.
	fmt.Println(cfg.Dir, cfg.Mounts[0].Kind, cfg.Mounts[0].Source)
	// Output:
	// refused: linux.sysctl.vm.swappiness
	// [/bin/server --port 80] 33 web /var/lib/bundles/web/rootfs
	// /srv bind /var/lib/bundles/web/rootfs/srv
}
