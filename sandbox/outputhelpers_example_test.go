//go:build linux

package sandbox_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/stockade/stockade/sandbox"
)

// Output runs the command and returns its standard output, as in os/exec;
// a failure's *ExitError holds the Result and the standard error.
func ExampleSandbox_Output() {
	out, err := sandbox.New(sandbox.Config{Args: []string{"uname", "-n"}}).Output(context.Background())
	var exit *sandbox.ExitError
	if errors.As(err, &exit) {
		log.Fatalf("%v: %s", exit.Result, exit.Stderr)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", out) // sandbox
}

// Command makes a process for a running sandbox with the methods of
// os/exec's Cmd.
func ExampleSandbox_Command() {
	ctx := context.Background()
	sb := sandbox.New(sandbox.Config{}) // no Args: long-lived
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	if _, err := sb.Command("sh", "-c", "echo 42 > answer").Run(ctx); err != nil {
		log.Fatal(err)
	}
	out, err := sb.Command("cat", "answer").Output(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", out) // 42
}

// Pipes connect a process's streams to the caller, who writes and reads
// while it runs, then calls Wait.
func ExampleCmd_StdoutPipe() {
	ctx := context.Background()
	sb := sandbox.New(sandbox.Config{})
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	cmd := sb.Command("tr", "a-z", "A-Z")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(ctx); err != nil {
		log.Fatal(err)
	}
	io.WriteString(stdin, "hello\n")
	stdin.Close()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if _, err := cmd.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Print(line) // HELLO
}
