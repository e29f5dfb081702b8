//go:build !linux

package main

import "github.com/stockade/stockade/sandbox"

// imageCommand is "stockade image": images need Linux.
func imageCommand([]string, stdio) (int, error) {
	return 1, &sandbox.FeatureError{Feature: "images"}
}
