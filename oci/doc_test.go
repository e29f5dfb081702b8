//go:build linux

package oci

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// wholes are the objects the table decides as a whole (refused or ignored
// whatever they hold), so their fields need no line of their own.
var wholes = map[string]bool{
	"solaris": true, "windows": true, "vm": true, "zos": true, "freebsd": true,
	"hooks":                   true,
	"process.consoleSize":     true,
	"process.scheduler":       true,
	"process.ioPriority":      true,
	"process.execCPUAffinity": true,
	"mounts.uidMappings":      true,
	"mounts.gidMappings":      true,
	"linux.resources.devices": true,
	"linux.resources.blockIO.throttleReadBpsDevice":   true,
	"linux.resources.blockIO.throttleWriteBpsDevice":  true,
	"linux.resources.blockIO.throttleReadIOPSDevice":  true,
	"linux.resources.blockIO.throttleWriteIOPSDevice": true,
	"linux.resources.blockIO.weightDevice":            true,
	"linux.resources.hugepageLimits":                  true,
	"linux.resources.network":                         true,
	"linux.resources.rdma":                            true,
	"linux.devices":                                   true,
	"linux.intelRdt":                                  true,
	"linux.memoryPolicy":                              true,
	"linux.timeOffsets":                               true,
	"linux.netDevices":                                true,
	"linux.personality":                               true,
}

// TestDocNamesEveryField checks that the package documentation's table
// names every field of the runtime-spec's Linux configuration, so that a
// field added to the spec module shows up here until it is decided.
func TestDocNamesEveryField(t *testing.T) {
	data, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	doc := string(data)
	var missing []string
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(doc) {
				missing = append(missing, p)
			}
			if !wholes[p] {
				walk(f.Type, p)
			}
		}
	}
	walk(reflect.TypeFor[specs.Spec](), "")
	require.Empty(t, missing, "fields of the runtime-spec the documentation does not name")
}
