//go:build linux

package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stockade/stockade/sandbox"
)

// A plugin host lets its plugin bind port 80 as an ordinary user and
// listen on no other TCP port (nor connect anywhere), kills it outright if it ever calls
// ptrace, and insists on Landlock: on a kernel that cannot enforce every
// rule, Start fails instead of running the plugin with less.
func ExampleSecurity() {
	sb := sandbox.New(sandbox.Config{
		Args:   []string{"/plugin/serve"},
		Stdout: os.Stdout,
		Security: sandbox.Security{
			// Danger: every capability kept opens kernel code to the plugin.
			Capabilities:  []string{"CAP_NET_BIND_SERVICE"},
			SeccompExtend: true,
			Seccomp: &specs.LinuxSeccomp{
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"ptrace"}, Action: specs.ActKillProcess},
				},
			},
			Landlock: sandbox.Landlock{
				Strict:  true,
				BindTCP: []uint16{80},
			},
		},
	})
	if err := sb.Start(context.Background()); err != nil {
		log.Fatal(err) // a *ConfigError names a bad field; a *FeatureError a missing Landlock
	}
	fmt.Printf("%+v\n", sb.Confinement())
	res, err := sb.Wait()
	var ee *sandbox.ExitError
	if errors.As(err, &ee) && res.Reason == sandbox.SeccompKilled {
		fmt.Println("the plugin made a forbidden system call")
	}
}
