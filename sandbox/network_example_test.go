//go:build linux

package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"

	"github.com/stockade/stockade/sandbox"
)

// Two sandboxes on a private network of a Networking of the caller's own:
// "app" reaches "db" by name, and nothing else reaches either of them.
// Closing the Networking removes everything it made from the host.
func ExampleNetworking_NewPrivateNetwork() {
	ctx := context.Background()
	nets, err := sandbox.NewNetworking(sandbox.NetworkingConfig{LinkSubnet: netip.MustParsePrefix("10.220.0.0/16")})
	if err != nil {
		log.Fatal(err)
	}
	defer nets.Close()
	cluster, err := nets.NewPrivateNetwork(sandbox.PrivateNetworkConfig{Name: "cluster", Members: []string{"db", "app"}})
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	join := sandbox.Network{Networks: []sandbox.Membership{{Network: "cluster"}}, Networking: nets}
	db := sandbox.New(sandbox.Config{Args: []string{"./db-server", "--port=5432"}, Hostname: "db", Network: join})
	if err := db.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := sandbox.New(sandbox.Config{Args: []string{"./client", "db:5432"}, Hostname: "app", Network: join}).Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// A test serves a sandbox from the host: the sandbox has a link to the host
// and reaches the host side of it, its gateway, and nothing else.
func ExampleNetwork_link() {
	sb := sandbox.New(sandbox.Config{
		Args:    []string{"sh", "-c", `wget -q -O- "http://$GATEWAY:8080/"`},
		Network: sandbox.Network{Link: &sandbox.Link{Addr: netip.MustParseAddr("10.213.0.2")}},
		Env:     []string{"GATEWAY=10.213.0.1", "PATH=" + sandbox.DefaultPath},
	})
	if _, err := sb.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// A server in a sandbox, reached from the host through a forwarded port
// that the host picked.
func ExampleSandbox_NetworkInfo() {
	sb := sandbox.New(sandbox.Config{
		Args:    []string{"./server", "--listen=:8080"},
		Network: sandbox.Network{Ports: []sandbox.Port{{Host: netip.MustParseAddrPort("127.0.0.1:0"), Port: 8080}}},
	})
	if err := sb.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	c, err := net.Dial("tcp", sb.NetworkInfo().Ports[0].String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Bad input is reported before anything is created, naming the field.
func ExampleNetwork_validate() {
	cfg := sandbox.Config{
		Args:    []string{"true"},
		Network: sandbox.Network{ShareHost: true, Ports: []sandbox.Port{{Host: netip.MustParseAddrPort("127.0.0.1:8080"), Port: 80}}},
	}
	var ce *sandbox.ConfigError
	if errors.As(cfg.Validate(), &ce) {
		fmt.Println(ce.Field)
	}
	// Output: Network.Ports
}
