//go:build !linux

package main

import (
	"errors"

	"github.com/stockade/stockade/sandbox"
)

// runTTY is "stockade run -t", which needs Linux as every sandbox does.
func (o *runOptions) runTTY(cfg sandbox.Config, std stdio) (int, error) {
	return exitSetup, errors.New("stockade run --tty: sandboxes need Linux")
}
