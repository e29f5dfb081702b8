package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// proc is one process of a sandbox's tree and its memory.
type proc struct {
	Pid  int
	Comm string
	RSS  int64 // resident set, bytes (VmRSS)
	PSS  int64 // proportional set, bytes: shared pages divided among their users
	Anon int64 // anonymous resident memory, bytes (RssAnon): its own, not the binary's pages
}

// tree returns pid and its descendants, parents first. A process that
// ends while it is read is left out.
func tree(pid int) []proc {
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		pr, err := readProc(p)
		if err != nil {
			continue
		}
		out = append(out, pr)
		queue = append(queue, children(p)...)
	}
	return out
}

// children lists the children of every thread of pid.
func children(pid int) []int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func readProc(pid int) (proc, error) {
	p := proc{Pid: pid}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return p, err
	}
	p.Comm = strings.TrimSpace(string(comm))
	if p.RSS, err = kbField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:"); err != nil {
		return p, err
	}
	if p.Anon, err = kbField(fmt.Sprintf("/proc/%d/status", pid), "RssAnon:"); err != nil {
		return p, err
	}
	if p.PSS, err = kbField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:"); err != nil {
		return p, err
	}
	return p, nil
}

// kbField reads the "Name:   123 kB" line of a /proc file, in bytes. A
// zombie or kernel thread has none: zero.
func kbField(path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), name)
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		return kb << 10, nil
	}
	return 0, s.Err()
}

// payload is the comm of the command the memory phase's sandboxes run;
// every other process of their trees supervises it.
const payload = "sleep"

// memSum adds up the memory of the processes that supervise sandboxes.
type memSum struct {
	rss, pss, anon int64
	byComm         map[string]int64 // RSS by process name
	payloads       int
}

// add adds the processes of procs that are not the payload, and counts
// the payloads.
func (m *memSum) add(procs []proc) {
	if m.byComm == nil {
		m.byComm = map[string]int64{}
	}
	for _, p := range procs {
		if p.Comm == payload {
			m.payloads++
			continue
		}
		m.rss += p.RSS
		m.pss += p.PSS
		m.anon += p.Anon
		m.byComm[p.Comm] += p.RSS
	}
}

// record sets res's memory figures to m's, per sandbox of k.
func (m *memSum) record(res *result, k int) {
	res.RSS, res.PSS, res.Anon, res.Held = mib(m.rss)/float64(k), mib(m.pss)/float64(k), mib(m.anon)/float64(k), k
	res.ByProcess = map[string]float64{}
	for c, v := range m.byComm {
		res.ByProcess[c] = mib(v) / float64(k)
	}
}
