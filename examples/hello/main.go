// Command hello runs a shell inside a sandbox and shows what it can see.
//
// A sandbox is a process tree that the kernel keeps in its own world: new
// namespaces give it its own process ids (its init is pid 1, and no host
// process is visible), its own host name, its own network (only a loopback
// interface), its own mount table (a root that shows the host's /usr
// read-only and nothing of the host's home directories, /etc or /tmp), and
// its own user ids (root inside, were it root, would be an unprivileged id
// on the host). The shell runs as the unprivileged user "sandbox", with no
// capabilities and no_new_privs set.
//
// Run it as root:
//
//	go run ./examples/hello
//
// No Go code runs inside the sandbox: the library starts it with a small
// program of raw system calls, and a tiny reaper is its pid 1. Where that
// cannot work (STOCKADE_START=init forces it), it starts a second copy of
// this binary as the sandbox's init stage instead; importing the sandbox
// package, which this program does anyway, is what makes that copy become
// the init rather than run main again.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/stockade/stockade/sandbox"
)

const script = `
echo "hello from $(hostname), I am $(id)"
echo "my pid is $$; processes I can see:"; ps -o pid,user,comm 2>/dev/null || ls /proc | grep '^[0-9]'
echo "network interfaces:"; ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut -d: -f1
echo "the root holds: $(ls /)"
echo "my uid map: $(cat /proc/self/uid_map)"
touch /usr/x 2>/dev/null || echo "/usr is read-only"
echo "the working directory is $(pwd), and I can write to it:" && echo hi > note && cat note
`

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := sandbox.New(sandbox.Config{
		Args:   []string{"/bin/sh", "-c", script},
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}).Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("the sandbox %s in %v (cpu %v user, %v system)\n",
		res, res.Wall.Round(time.Microsecond), res.UserTime, res.SystemTime)
}
