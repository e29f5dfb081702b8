//go:build !linux

package main

import (
	"errors"
	"os"
)

func dupFD(int) (*os.File, error) {
	return nil, errors.New("descriptors by number are supported on Linux only")
}
