//go:build linux

package sandbox_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"time"

	"github.com/stockade/stockade/sandbox"
)

// A long-lived sandbox: no Args, so Start prepares it; Exec runs commands
// in it one after another, sharing its files; CopyIn and CopyOut move
// files across; Close ends it.
func ExampleSandbox_Exec() {
	ctx := context.Background()
	sb := sandbox.New(sandbox.Config{Timeout: time.Minute})
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	if err := sb.CopyIn("main.c", "/work/main.c"); err != nil {
		log.Fatal(err)
	}
	for _, args := range [][]string{{"cc", "-o", "prog", "main.c"}, {"./prog"}} {
		res, err := sb.Exec(ctx, sandbox.Cmd{Args: args, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			log.Fatalf("%v: %v", args, err) // an *ExitError holds res
		}
		fmt.Println(args[0], res.Reason)
	}
	if err := sb.CopyOut("/work/prog", "prog"); err != nil {
		log.Fatal(err)
	}
}

// A Pool keeps sandboxes started, so that each Run gets a fresh one at the
// cost of an Exec; nothing crosses from one run to the next.
func ExampleNewPool() {
	pool, err := sandbox.NewPool(sandbox.Config{Limits: sandbox.Limits{Memory: 256 << 20}}, 4)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	for i := range 10 {
		out, err := os.Create(fmt.Sprintf("run-%d.out", i))
		if err != nil {
			log.Fatal(err)
		}
		res, err := pool.Run(context.Background(), sandbox.Cmd{Args: []string{"./job", fmt.Sprint(i)}, Stdout: out, Timeout: 5 * time.Second})
		out.Close()
		if err != nil && res == nil {
			log.Fatal(err) // no sandbox could be started
		}
		fmt.Println(i, res)
	}
}

// A service checks at start-up that this host can run its sandboxes, and
// says why not.
func ExampleProbe() {
	r := sandbox.Probe()
	if !r.Sandbox.Available {
		log.Fatalf("no sandboxes here: %s\n%s", r.Sandbox.Detail, r)
	}
	if !r.Cgroups.Available {
		log.Printf("limits need a delegated cgroup: %s", r.Cgroups.Detail)
	}
}

// Start and Wait on a Cmd, as with os/exec: a server runs in a long-lived
// sandbox while the caller talks to it.
func ExampleCmd_Start() {
	ctx := context.Background()
	sb := sandbox.New(sandbox.Config{})
	if err := sb.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	srv := sb.Command("./server", "--port=8080")
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := sb.Command("./client", "127.0.0.1:8080").Output(ctx); err != nil {
		log.Fatal(err)
	}
	sb.Close() // ends the server too
	res, _ := srv.Wait()
	fmt.Println(res.Reason)
}

// A network setup of the caller's own, with its own link subnet and IPv6,
// for the sandboxes that name it; closing it removes everything it made.
func ExampleNewNetworking() {
	nets, err := sandbox.NewNetworking(sandbox.NetworkingConfig{
		LinkSubnet:  netip.MustParsePrefix("10.230.0.0/16"),
		LinkSubnet6: netip.MustParsePrefix("fd00:230::/64"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer nets.Close()
	res, err := sandbox.New(sandbox.Config{
		Args:    []string{"ip", "addr", "show", "eth0"},
		Stdout:  os.Stdout,
		Network: sandbox.Network{Link: &sandbox.Link{}, Networking: nets},
	}).Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Reason)
}
