//go:build linux && !race

package sandbox

// raceEnabled reports whether the test binary runs under the race
// detector, whose runtime needs far more memory than a plain Go program.
const raceEnabled = false
