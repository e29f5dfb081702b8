package main

import (
	"context"

	"github.com/stockade/stockade/sandbox"
)

func main() {
	for i := 0; i < 8; i++ {
		sandbox.New(sandbox.Config{Args: []string{"/bin/true"}}).Run(context.Background())
	}
}
