// Command judge runs submissions the way an online judge does: each in a
// fresh sandbox taken from a warm pool, with a time limit, its input on
// stdin, and a verdict from how it ended.
//
// Starting a sandbox costs a few milliseconds (two program starts, new
// namespaces, a root file system); a judge should not make a submission
// wait for that. sandbox.NewPool keeps sandboxes started and waiting, and
// Pool.Run runs a command in one of them at the cost of starting that one
// process. Each sandbox serves a single run and is thrown away: nothing a
// submission leaves behind (files, processes, memory) can reach the next.
// The verdict comes from the Result: its Reason tells an exit from a kill
// by a signal or by the time limit, never guessed from an exit status.
//
// Run it as root:
//
//	go run ./examples/judge
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/stockade/stockade/sandbox"
)

// submissions are shell programs that should print the sum of two numbers.
var submissions = map[string]string{
	"correct":   `read a b; echo $((a + b))`,
	"wrong":     `read a b; echo $((a - b))`,
	"crashes":   `kill -SEGV $$`,
	"too slow":  `while :; do :; done`,
	"litters":   `touch /work/left-behind; sleep 30 >/dev/null 2>&1 & read a b; echo $((a + b))`,
	"sees mess": `ls /work; read a b; echo $((a + b))`,
}

func main() {
	pool, err := sandbox.NewPool(sandbox.Config{Timeout: time.Second}, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	for _, name := range []string{"correct", "wrong", "crashes", "too slow", "litters", "sees mess"} {
		var out strings.Builder
		res, err := pool.Run(context.Background(), sandbox.Cmd{
			Args:   []string{"sh", "-c", submissions[name]},
			Stdin:  strings.NewReader("40 2\n"),
			Stdout: &out,
		})
		var exit *sandbox.ExitError
		if err != nil && !errors.As(err, &exit) {
			log.Fatal(err) // the judge itself failed
		}
		fmt.Printf("%-10s %-20s %s\n", name, verdict(res, out.String()), res.Wall.Round(time.Millisecond))
	}
}

func verdict(res *sandbox.Result, out string) string {
	switch {
	case res.Reason == sandbox.Timeout:
		return "time limit exceeded"
	case res.Reason == sandbox.Signaled:
		return "runtime error (" + res.Signal.String() + ")"
	case res.ExitCode != 0:
		return fmt.Sprintf("runtime error (exit %d)", res.ExitCode)
	case strings.TrimSpace(out) == "42":
		return "accepted"
	default:
		return "wrong answer"
	}
}
