//go:build linux

package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"syscall"
	"time"

	"github.com/stockade/stockade/sandbox"
)

// Run a command with the secure defaults and read how it ended.
func Example() {
	res, err := sandbox.New(sandbox.Config{
		Args:   []string{"sh", "-c", "echo hello from $(hostname)"},
		Stdout: os.Stdout,
	}).Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Reason, res.ExitCode, res.UserTime+res.SystemTime)
}

// A judge runs a submission with a wall-clock limit, its input on stdin,
// its output captured, and its directory mounted read-only; a non-zero
// exit, a signal or a timeout arrives as an *ExitError with the Result.
func ExampleSandbox_Run() {
	var out bytes.Buffer
	res, err := sandbox.New(sandbox.Config{
		Args:    []string{"/box/solution"},
		Dir:     "/work",
		Stdin:   bytes.NewBufferString("1 2\n"),
		Stdout:  &out,
		Timeout: 2 * time.Second,
		Mounts:  []sandbox.Mount{{Kind: sandbox.Bind, Source: "/srv/submissions/42", Target: "/box"}},
	}).Run(context.Background())
	var exit *sandbox.ExitError
	switch {
	case errors.As(err, &exit):
		fmt.Println("verdict:", exit.Result) // e.g. "timed out after 2s"
	case err != nil:
		log.Fatal(err) // the sandbox could not be set up
	default:
		fmt.Printf("accepted in %v: %s", res.Wall, out.String())
	}
}

// Start a long-running command, signal it, and wait for it.
func ExampleSandbox_Start() {
	sb := sandbox.New(sandbox.Config{Args: []string{"sleep", "60"}})
	if err := sb.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	sb.Kill(syscall.SIGTERM)
	res, _ := sb.Wait()
	fmt.Println(res) // killed by SIGTERM
}

// Validate reports a bad config by the name of its field, before anything
// is created.
func ExampleConfig_Validate() {
	cfg := sandbox.Config{
		Args:   []string{"true"},
		Mounts: []sandbox.Mount{{Kind: sandbox.Bind, Source: "data", Target: "/data"}},
	}
	err := cfg.Validate()
	var ce *sandbox.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field)
	}
	// Output: Mounts[0].Source
}

// Run a command as root on an image's root: the layers stay as they are,
// the writes go to the sandbox's own upper layer, which the owner reads
// before Close removes it.
func ExampleSandbox_Upper() {
	sb := sandbox.New(sandbox.Config{
		Args:      []string{"/bin/sh", "-c", "echo hello >/etc/motd"},
		RunAsRoot: true,
		Overlay: &sandbox.Overlay{
			// Unpacked image layers, lowest first.
			Layers: []string{"/var/lib/images/base", "/var/lib/images/tools"},
		},
	})
	defer sb.Close()
	if _, err := sb.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	upper, err := sb.Upper()
	if err != nil {
		log.Fatal(err)
	}
	motd, err := os.ReadFile(upper + "/etc/motd")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", motd)
}
