//go:build !linux

package main

import "github.com/stockade/stockade/sandbox"

// imageRun is empty off Linux: "stockade run" has no image flags there.
type imageRun struct{}

func (*imageRun) define(*parser) {}

func (*imageRun) apply(*runOptions, *sandbox.Config, stdio) error { return nil }

func (*imageRun) afterRun(*sandbox.Sandbox, *sandbox.Config, stdio) error { return nil }

func (*imageRun) given() bool { return false }
