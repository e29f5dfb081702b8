//go:build linux && !(amd64 || arm64)

package sandbox

import (
	"context"
	"syscall"
	"time"

	"github.com/stockade/stockade/internal/proto"
)

// Without an interpreter for this architecture every sandbox starts
// through the init stage; rawProc is never set.

type rawProc struct{ pid, pidfd int }

const startEnv = "STOCKADE_START"

func rawWanted() bool { return false }

func probeRawStart() Support {
	return no("no raw start path for this architecture: sandboxes start through the init stage")
}

func (s *Sandbox) startRaw(context.Context, *Config, identity, *rollback) (bool, error) {
	return false, nil
}

func (s *Sandbox) rawKill(syscall.Signal) error { return ErrFinished }

func (p *rawProc) signalLocked(syscall.Signal) error { return ErrFinished }

func (s *Sandbox) rawExec(context.Context, Cmd, *proto.Exec, *Config, time.Time) (*Result, error) {
	return nil, ErrFinished
}
func (p *rawProc) command() bool      { return false }
func (p *rawProc) exitedLocked() bool { return true }
