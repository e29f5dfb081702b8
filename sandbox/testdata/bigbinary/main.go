// Command bigbinary stands in for a large service that embeds stockade: it
// links a good part of the standard library, so that its package
// initialisation and its size weigh on every sandbox start the way a real
// service's would. BenchmarkRunLargeBinary builds it and runs it; it starts
// the number of sandboxes given as its argument and prints the median time
// of one run in nanoseconds.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	_ "archive/zip"
	_ "compress/gzip"
	_ "crypto/tls"
	_ "crypto/x509"
	_ "database/sql"
	_ "encoding/xml"
	_ "go/parser"
	_ "go/types"
	_ "html/template"
	_ "image/jpeg"
	_ "image/png"
	_ "net/http"
	_ "net/http/pprof"
	_ "net/mail"
	_ "net/rpc"
	_ "regexp"
	_ "text/template"

	"github.com/stockade/stockade/sandbox"
)

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil {
		panic(err)
	}
	var d []time.Duration
	for range n {
		t := time.Now()
		if _, err := sandbox.New(sandbox.Config{Args: []string{"/bin/true"}}).Run(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		d = append(d, time.Since(t))
	}
	slices.Sort(d)
	fmt.Println(int64(d[len(d)/2]))
}
