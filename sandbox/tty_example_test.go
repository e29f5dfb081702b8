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

// A terminal session in a sandbox that outlives it, as "docker exec -it"
// opens one: the sandbox has terminals of its own (Config.TTY, here with
// no command), and each session is a shell of Sandbox.Command with a
// terminal, whose master the service reads and writes.
func ExampleCmd_Terminal() {
	sb := sandbox.New(sandbox.Config{TTY: &sandbox.TTY{}})
	if err := sb.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	sh := sb.Command("/bin/sh")
	sh.TTY = &sandbox.TTY{Rows: 24, Cols: 80}
	if err := sh.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	tty := sh.Terminal()
	defer tty.Close() // the caller's to close
	go io.Copy(os.Stdout, tty)
	io.Copy(tty, strings.NewReader("stty size\nexit 0\n"))
	if _, err := sh.Wait(); err != nil {
		log.Fatal(err)
	}
}
