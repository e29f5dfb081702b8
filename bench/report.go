package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// report is one run of the harness: the setting, the host and a result per
// runner, in the table's order.
type report struct {
	Date time.Time `json:"date"`
	Host string    `json:"host"`
	// Load is the load average (1, 5 and 15 minutes) when the run began:
	// high figures mean other work shared the machine.
	Load      string    `json:"load"`
	Busybox   string    `json:"busybox"`
	Runs      int       `json:"runs"`
	Rounds    int       `json:"rounds"`
	Duration  string    `json:"duration"`
	Windows   int       `json:"windows"`
	Launchers []int     `json:"launchers"`
	Hold      int       `json:"hold"`
	Results   []*result `json:"results"`
	Missing   []string  `json:"missing,omitempty"`
}

func (rep *report) find(key string) *result {
	for _, r := range rep.Results {
		if r.Key == key && !r.failed() && r.P50 > 0 {
			return r
		}
	}
	return nil
}

// markdown writes the report as the README's Performance section shows
// it: the table, the goals, the in-process stages and what each runner
// isolates.
func (rep *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "Measured %s on %s, load average %s when it began. Every sandbox runs `/bin/true` from the same static busybox root (%s). "+
		"Latency: %d runs of each, one at a time, interleaved in %d rounds, and the CPU time one of them cost (user and system, of every process involved, the launcher's included); throughput: sandboxes started and waited for by N concurrent launchers, the median of %d interleaved %s windows; "+
		"memory: %d sandboxes running `sleep` at once, the supervising processes' memory per sandbox: resident (RSS), proportional (PSS: pages shared among processes, such as the binaries', divided among them) and anonymous (each process's own).\n\n",
		rep.Date.UTC().Format("2006-01-02 15:04 MST"), rep.Host, rep.Load, rep.Busybox, rep.Runs, rep.Rounds, rep.Windows, rep.Duration, rep.Hold)
	plain, bwrap := rep.find("plain"), rep.find("bwrap")
	fmt.Fprint(w, "| runner | p50 ms | p90 ms | × plain | × bwrap | CPU ms |")
	for _, l := range rep.Launchers {
		fmt.Fprintf(w, " %d %s/s |", l, plural(l, "launcher"))
	}
	fmt.Fprintln(w, " RSS MiB/sandbox | PSS | anon |")
	fmt.Fprint(w, "|---|--:|--:|--:|--:|--:|")
	for range rep.Launchers {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w, "--:|--:|--:|")
	for _, r := range rep.Results {
		if r.failed() {
			fmt.Fprintf(w, "| %s | failed: %s |\n", r.Name, oneLine(r.Error))
			continue
		}
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %s | %s | %.2f |", r.Name, r.P50, r.P90, ratio(r, plain), ratio(r, bwrap), r.CPU)
		for _, l := range rep.Launchers {
			fmt.Fprintf(w, " %s |", num(r.Rate[l], "%.0f"))
		}
		if r.Held == 0 {
			fmt.Fprintln(w, " — | — | — |")
		} else {
			fmt.Fprintf(w, " %.2f | %.2f | %.2f |\n", r.RSS, r.PSS, r.Anon)
		}
	}
	fmt.Fprintln(w)
	rep.goals(w)
	rep.stages(w)
	rep.memoryByProcess(w)
	fmt.Fprintln(w, "What each row isolates:")
	fmt.Fprintln(w)
	for _, r := range rep.Results {
		v := ""
		if r.Version != "" {
			v = " (" + r.Version + ")"
		}
		fmt.Fprintf(w, "- **%s**%s: %s\n", r.Name, v, r.Isolation)
	}
	for _, m := range rep.Missing {
		fmt.Fprintf(w, "- not measured: %s\n", m)
	}
}

// goal is one of the performance goals and how this run met it.
type goal struct {
	What     string
	Measured string
	Met      bool
}

// goalList evaluates the performance goals of the process model against
// bwrap, in this run, on the default in-process rows.
func (rep *report) goalList() []goal {
	in, heap, reuse := rep.find("stockade"), rep.find("stockade-heap"), rep.find("stockade-reuse")
	cli, bwrap := rep.find("cli"), rep.find("bwrap")
	var gs []goal
	if in != nil && bwrap != nil {
		x := in.P50 / bwrap.P50
		gs = append(gs, goal{"in-process p50 ≤ 0.5 × bwrap's", fmt.Sprintf("%.2f ×", x), x <= 0.5})
		if in.CPU > 0 && bwrap.CPU > 0 {
			x := in.CPU / bwrap.CPU
			gs = append(gs, goal{"in-process CPU per sandbox ≤ 0.9 × bwrap's", fmt.Sprintf("%.2f ×", x), x <= 0.9})
		}
		if in.Rate[2] > 0 && bwrap.Rate[2] > 0 {
			x := in.Rate[2] / bwrap.Rate[2]
			gs = append(gs, goal{"in-process throughput ≥ 1.8 × bwrap's, 2 launchers", fmt.Sprintf("%.2f ×", x), x >= 1.8})
		}
	}
	if reuse != nil && bwrap != nil && reuse.Rate[2] > 0 && bwrap.Rate[2] > 0 {
		x := reuse.Rate[2] / bwrap.Rate[2]
		gs = append(gs, goal{"throughput with namespace reuse ≥ 2.5 × bwrap's, 2 launchers", fmt.Sprintf("%.2f ×", x), x >= 2.5})
	}
	if in != nil && heap != nil {
		x := heap.P50 / in.P50
		gs = append(gs, goal{"p50 with a 1 GiB heap ≤ 1.2 × without", fmt.Sprintf("%.2f ×", x), x <= 1.2})
	}
	if cli != nil && bwrap != nil {
		x := cli.P50 / bwrap.P50
		gs = append(gs, goal{"CLI p50 ≤ bwrap's", fmt.Sprintf("%.2f ×", x), x <= 1})
	}
	if in != nil && in.Held > 0 {
		gs = append(gs, goal{"supervisor RSS ≤ 1 MiB per running sandbox", fmt.Sprintf("%.2f MiB", in.RSS), in.RSS <= 1})
	}
	return gs
}

func (rep *report) goals(w io.Writer) {
	gs := rep.goalList()
	if len(gs) == 0 {
		return
	}
	fmt.Fprintln(w, "| goal (default config) | measured | |")
	fmt.Fprintln(w, "|---|--:|---|")
	for _, g := range gs {
		mark := "missed"
		if g.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", g.What, g.Measured, mark)
	}
	fmt.Fprintln(w)
}

// stages writes the mean time of each stage of the in-process runners'
// starts.
func (rep *report) stages(w io.Writer) {
	for _, r := range rep.Results {
		if len(r.Stages) == 0 || r.failed() {
			continue
		}
		fmt.Fprintf(w, "Where a start of %s goes (mean ms; \"total\" is Start, \"exit\" the rest up to Wait's return). "+
			"CPU per sandbox: %.2f ms, %.2f in the program that embeds the library and %.2f in the sandbox's init stage and command.\n\n",
			r.Name, r.CPU, r.OwnCPU, r.CPU-r.OwnCPU)
		var head, rule, vals strings.Builder
		for _, s := range r.Stages {
			fmt.Fprintf(&head, " %s |", s.Name)
			rule.WriteString("--:|")
			fmt.Fprintf(&vals, " %.2f |", s.Ms)
		}
		fmt.Fprintf(w, "|%s\n|%s\n|%s\n\n", head.String(), rule.String(), vals.String())
	}
}

// memoryByProcess writes which processes the supervisor memory is in.
func (rep *report) memoryByProcess(w io.Writer) {
	var lines []string
	for _, r := range rep.Results {
		if r.failed() || len(r.ByProcess) == 0 {
			continue
		}
		names := slices.Sorted(maps.Keys(r.ByProcess))
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.2f", n, r.ByProcess[n]))
		}
		lines = append(lines, fmt.Sprintf("- %s: %s", r.Name, strings.Join(parts, ", ")))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "Supervisor memory per running sandbox, by process (RSS MiB; `exe` is stockade's init stage, "+
		"re-executed through /proc/self/exe, and `+owner` what the program that embeds the library grew by):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
	fmt.Fprintln(w)
}

func ratio(r, base *result) string {
	if base == nil || base.P50 == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", r.P50/base.P50)
}

func num(v float64, format string) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}

// The markers in the README between which --readme puts the results.
const (
	readmeBegin = "<!-- bench results: begin (cd bench && go run . --readme ../README.md) -->"
	readmeEnd   = "<!-- bench results: end -->"
)

// updateReadme replaces what stands between the results' markers in the
// file at path with md.
func updateReadme(path, md string) error {
	return updateReadmeBetween(path, readmeBegin, readmeEnd, md)
}

// updateReadmeBetween replaces what stands between the lines begin and
// end in the file at path with md.
func updateReadmeBetween(path, readmeBegin, readmeEnd, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("update readme: %w", err)
	}
	s := string(b)
	i, j := strings.Index(s, readmeBegin), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("update readme: %s has no %q line followed by %q", path, readmeBegin, readmeEnd)
	}
	s = s[:i+len(readmeBegin)] + "\n\n" + md + "\n" + s[j:]
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("update readme: %w", err)
	}
	return nil
}
