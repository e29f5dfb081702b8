// Package wire holds the messages between the benchmark harness and its
// in-process worker (bench/inproc): one JSON Request a line on the
// worker's standard input, one JSON Answer a line on its standard output.
// It imports nothing, so that the worker stays as lean as the programs
// it stands for.
package wire

// The operations a Request names.
const (
	// Latency runs N sandboxes one after another.
	Latency = "latency"
	// Throughput runs sandboxes from Launchers concurrent launchers for
	// Seconds.
	Throughput = "throughput"
	// Hold starts K sandboxes that sleep, and answers once they all run.
	Hold = "hold"
	// Release ends the sandboxes Hold started.
	Release = "release"
)

// Request is one thing the harness asks the worker to do.
type Request struct {
	Op        string  `json:"op"`
	N         int     `json:"n,omitempty"`
	Launchers int     `json:"launchers,omitempty"`
	Seconds   float64 `json:"seconds,omitempty"`
	K         int     `json:"k,omitempty"`
}

// Answer is the worker's answer to a Request.
type Answer struct {
	// Runs are the start-to-exit times of a Latency request, in ns.
	Runs []int64 `json:"runs,omitempty"`
	// Stages are the summed durations, in ns, of each stage of the starts
	// of a Latency request, as the sandbox logs them; Order is their order.
	Stages map[string]int64 `json:"stages,omitempty"`
	Order  []string         `json:"order,omitempty"`
	// CPU is the CPU time, in ns, that the worker and its sandboxes used
	// during a Latency request, user and system; OwnCPU is the worker's
	// own part of it.
	CPU    int64 `json:"cpu,omitempty"`
	OwnCPU int64 `json:"ownCPU,omitempty"`
	// Done and Elapsed are a Throughput request's completed sandboxes and
	// the time they took, in ns.
	Done    int64 `json:"done,omitempty"`
	Elapsed int64 `json:"elapsed,omitempty"`
	// Error says why the request failed; empty when it did not.
	Error string `json:"error,omitempty"`
}
