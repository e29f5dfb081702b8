//go:build linux

package sandbox

import (
	"fmt"
	"time"
)

// Stats are a running sandbox's figures, as in Result.
type Stats struct {
	CPUUser, CPUSystem     time.Duration
	MemoryPeak             int64
	Pids, PidsPeak         int64
	ForksRefused, OOMKills int64
}

// Stats returns the figures of the running sandbox from its control group.
func (s *Sandbox) Stats() (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.runningLocked(); err != nil {
		return Stats{}, err
	}
	if s.exited {
		// The teardown is under way, and removes the group.
		return Stats{}, ErrFinished
	}
	if s.lim == nil || s.lim.group == nil {
		return Stats{}, ErrNoCgroup
	}
	st, err := s.lim.group.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("stockade: stats: %w", err)
	}
	return Stats{
		CPUUser: st.CPUUser, CPUSystem: st.CPUSystem,
		MemoryPeak: clampInt64(st.MemoryPeak),
		Pids:       clampInt64(st.Pids), PidsPeak: clampInt64(st.PidsPeak),
		ForksRefused: clampInt64(st.ForksRefused), OOMKills: clampInt64(st.OOMKills),
	}, nil
}
