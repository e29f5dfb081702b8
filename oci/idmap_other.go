//go:build !linux

package oci

// idmappable is false off Linux, which has no idmapped mounts.
func idmappable(string) bool { return false }
