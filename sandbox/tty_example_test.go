//go:build linux

package sandbox_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/stockade/stockade/sandbox"
)

// A web terminal gives each visitor a shell in a sandbox of its own: the
// shell's terminal is one of the sandbox's, and the service copies bytes
// between it and the visitor's browser (here, a script and the service's
// standard output), and resizes it when the browser window changes.
func ExampleSandbox_Terminal() {
	sb := sandbox.New(sandbox.Config{
		Args: []string{"/bin/sh"},
		Env:  append(sandbox.DefaultEnv("sandbox", "/work"), "TERM=xterm"),
		TTY:  &sandbox.TTY{Rows: 24, Cols: 80},
	})
	if err := sb.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer sb.Close() // closes the terminal's master too
	tty := sb.Terminal()
	go io.Copy(os.Stdout, tty) // ends once the shell and its jobs are gone
	if err := sb.Resize(40, 120); err != nil {
		log.Fatal(err)
	}
	// What the visitor types; "\x03" would be a Ctrl-C for the
	// foreground job, not for the shell.
	io.Copy(tty, strings.NewReader("stty size\nexit 0\n"))
	res, err := sb.Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the shell exited with", res.ExitCode)
}
