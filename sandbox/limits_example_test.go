//go:build linux

package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/stockade/stockade/sandbox"
)

// A judge's verdict: memory, tasks, CPU time and output limited, and the
// Result tells which limit ended the run and what the submission used.
func ExampleLimits() {
	res, err := sandbox.New(sandbox.Config{
		Args:    []string{"/box/solution"},
		Timeout: 10 * time.Second,
		Limits: sandbox.Limits{
			Memory:  256 << 20,
			Pids:    64,
			CPUTime: 2 * time.Second,
			Output:  1 << 20,
		},
	}).Run(context.Background())
	var exit *sandbox.ExitError
	if err != nil && !errors.As(err, &exit) {
		log.Fatal(err) // a bad limit is a *sandbox.ConfigError naming the field
	}
	switch res.Reason {
	case sandbox.OOMKilled:
		fmt.Println("memory limit exceeded, peak", res.MemoryPeak)
	case sandbox.CPUTimeLimit, sandbox.Timeout:
		fmt.Println("time limit exceeded:", res.UserTime+res.SystemTime)
	case sandbox.OutputLimit:
		fmt.Println("output limit exceeded")
	default:
		fmt.Println(res, "forks refused:", res.ForksRefused)
	}
}

// A service removes, when it starts, the control groups that sandboxes of
// a previous instance left behind when it was killed.
func ExampleCleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sandbox.Cleanup(ctx); err != nil {
		log.Print(err)
	}
}
