// Command session keeps one sandbox alive and runs several commands in it,
// the way a test harness or a notebook would.
//
// A sandbox whose Config has no Args has no command of its own: Start
// builds it (namespaces, root file system, privileges dropped) and its init
// waits. Exec then starts processes in it, one after another or at once,
// each with its own arguments, environment, user and standard streams, and
// each gets its own Result; Command makes such a process with the methods
// of os/exec's Cmd (Output, CombinedOutput, the pipes). They share the
// sandbox: what one writes in the working directory the next one reads, a
// server one leaves running in the background the next can talk to. CopyIn
// and CopyOut move files across the sandbox's boundary; they resolve paths
// inside the sandbox's root, so a link made inside cannot redirect them
// onto the host. Close kills every process of the sandbox and releases
// everything it held.
//
// Run it as root:
//
//	go run ./examples/session
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/stockade/stockade/sandbox"
)

func main() {
	ctx := context.Background()
	sb := sandbox.New(sandbox.Config{Hostname: "session"})
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Close()

	// Give the sandbox a file from the host.
	dir, err := os.MkdirTemp("", "session")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	input := filepath.Join(dir, "numbers")
	if err := os.WriteFile(input, []byte("3\n1\n2\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := sb.CopyIn(input, "/work/numbers"); err != nil {
		log.Fatal(err)
	}

	// Command makes a process to run in the sandbox, with the methods of
	// os/exec's Cmd; Wait gives its Result again after CombinedOutput.
	run := func(script string) {
		cmd := sb.Command("sh", "-c", script)
		out, err := cmd.CombinedOutput(ctx)
		if err != nil {
			log.Fatalf("%s: %v\n%s", script, err, out)
		}
		res, _ := cmd.Wait()
		fmt.Printf("$ %s\n%s(%s in %v)\n", script, out, res, res.Wall.Round(1000))
	}
	run("sort -n numbers > sorted; cat sorted")
	run("echo the state stays: $(cat sorted | tr '\\n' ' '); hostname")
	run("sleep 60 >/dev/null 2>&1 & echo started a background process")
	run("ps -o pid,comm")

	// Take a result back out.
	output := filepath.Join(dir, "sorted")
	if err := sb.CopyOut("/work/sorted", output); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(output)
	fmt.Printf("copied out: %q\n", b)

	if err := sb.Close(); err != nil {
		log.Fatal(err)
	}
	res, _ := sb.Wait()
	fmt.Printf("the sandbox %s; every process in it is gone\n", res)
}
