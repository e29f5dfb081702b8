//go:build linux && !(amd64 || arm64)

package sandbox

import "errors"

// newUserNS needs the raw path's interpreter, which this architecture
// lacks.
func newUserNS(identity) (int, error) {
	return -1, &FeatureError{Feature: "Overlay or RootIDMap", Err: errors.New("host root's idmapped mounts need the raw start path's interpreter (amd64, arm64)")}
}
