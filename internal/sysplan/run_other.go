//go:build !linux || !(amd64 || arm64)

package sysplan

// Supported reports whether this architecture has an interpreter: it has
// not, and sandboxes start through the fallback init stage.
const Supported = false
