// Command cluster starts a small cluster of sandboxes that reach each
// other by name and nothing else, and talks to one of them from the host,
// the way a test harness would start a database and a client.
//
// A private network is a bridge in a network namespace of its own: nothing
// of it is on the host, and it goes away with the process that made it.
// A sandbox.Networking holds the networks, links and forwarded ports of
// the sandboxes that name it in Config.Network.Networking (nil names the
// process's default); its NewPrivateNetwork makes a network, and a sandbox
// joins it by naming it in Config.Network.Networks, under its host name. Every member gets an
// address on the network and an /etc/hosts that lists the other members,
// so "db" resolves inside "app". Naming the members ahead of time
// (PrivateNetworkConfig.Members) gives each its address at once, so that
// every member's hosts file lists all of them, whatever order they start
// in.
//
// Members reach nothing but each other: not the host, not the internet,
// not members of other networks. To talk to a sandbox from the host,
// forward a host port to it (Config.Network.Ports): the calling process
// listens on the host address and carries each connection into the
// sandbox, where it arrives at 127.0.0.1.
//
// Networks, links and forwarded ports need root. Run it as root, with a
// static busybox installed (Debian package busybox-static):
//
//	go run ./examples/cluster
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/stockade/stockade/sandbox"
)

const busybox = "/bin/busybox"

func main() {
	ctx := context.Background()
	// Everything the Networking holds goes when it is closed.
	nets, err := sandbox.NewNetworking(sandbox.NetworkingConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer nets.Close()

	cluster, err := nets.NewPrivateNetwork(sandbox.PrivateNetworkConfig{
		Name:    "cluster",
		Members: []string{"db", "app"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	fmt.Println("network", cluster.Name(), "has subnet", cluster.Subnet())

	// The "database": answers every connection on port 5432 with a line.
	// Port 5432 is also forwarded from a free port of the host's loopback.
	db := sandbox.New(sandbox.Config{
		Args:     []string{busybox, "nc", "-ll", "-p", "5432", "-e", busybox, "echo", "hello from db"},
		Hostname: "db",
		Network: sandbox.Network{
			Networks:   []sandbox.Membership{{Network: "cluster"}},
			Ports:      []sandbox.Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 5432}},
			Networking: nets,
		},
	})
	if err := db.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	info := db.NetworkInfo()
	fmt.Println("db has address", info.Addrs[0], "and is forwarded from", info.Ports[0])

	// The client, on the same network, finds db by name. Output runs it
	// and returns what it printed, as in os/exec.
	out, err := sandbox.New(sandbox.Config{
		Args: []string{busybox, "sh", "-c",
			"grep -w db /etc/hosts; for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 2 db 5432 </dev/null && exit; sleep 0.2; done"},
		Hostname: "app",
		Network:  sandbox.Network{Networks: []sandbox.Membership{{Network: "cluster"}}, Networking: nets},
	}).Output(ctx)
	if err != nil {
		log.Fatalf("app: %v\n%s", err, out)
	}
	fmt.Printf("app sees:\n%s", out)

	// A sandbox on no network reaches nothing.
	out, err = sandbox.New(sandbox.Config{
		Args: []string{busybox, "sh", "-c", "nc -w 1 " + info.Addrs[0].String() + " 5432 </dev/null || echo loner cannot reach db"},
	}).Output(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", out)

	// The host talks to db through the forwarded port.
	c, err := net.DialTimeout("tcp", info.Ports[0].String(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("the host hears: %s", line)
}
