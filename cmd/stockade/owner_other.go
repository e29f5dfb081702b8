//go:build !linux

package main

import "github.com/stockade/stockade/sandbox"

// ownRootBinds is described in owner_linux.go; no sandbox starts here.
func ownRootBinds(*sandbox.Config) {}
