package cgroup

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceRule is one rule of the devices controller (cgroup v1): it allows
// or denies access to device nodes. The kernel keeps a default, allow or
// deny, and a list of exceptions to it; a rule of Type "a" sets the
// default for every device and clears the list, a rule for a "b" (block)
// or "c" (character) device adds or removes an exception, as
// Documentation/admin-guide/cgroup-v1/devices.rst describes.
type DeviceRule struct {
	// Allow allows the access; false denies it.
	Allow bool
	// Type is "a" (every device), "b" (block) or "c" (character).
	Type string
	// Major and Minor are the device's numbers, AnyDevice for every one
	// ("*"). A rule of Type "a" takes AnyDevice for both.
	Major, Minor int64
	// Access is the access allowed or denied, a combination of "r" (read),
	// "w" (write) and "m" (mknod); a rule of Type "a" takes "rwm".
	Access string
}

// AnyDevice, as DeviceRule.Major or Minor, matches every number.
const AnyDevice = -1

// The largest device numbers: Linux has 12 bits of major and 20 of minor.
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// String returns the rule as the kernel reads and lists it, without its
// verdict: "c 1:3 rwm", "a *:* rwm".
func (r DeviceRule) String() string {
	num := func(n int64) string {
		if n == AnyDevice {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%s %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
}

// deviceRuleErrors checks one rule; field names it ("Limits.Devices[2]").
func deviceRuleErrors(field string, r DeviceRule) []error {
	var errs []error
	bad := func(f, format string, args ...any) {
		errs = append(errs, invalid(field+"."+f, format, args...))
	}
	switch r.Type {
	case "a":
		if r.Major != AnyDevice || r.Minor != AnyDevice {
			bad("Major", "a rule for every device (type a) takes AnyDevice (-1) as Major and Minor, not %d:%d", r.Major, r.Minor)
		}
		if r.Access != "rwm" {
			bad("Access", "a rule for every device (type a) sets every access, rwm, not %q: the kernel sets the default for all access", r.Access)
		}
		return errs
	case "b", "c":
	default:
		bad("Type", "must be a (all), b (block) or c (character), not %q", r.Type)
	}
	if r.Major != AnyDevice && (r.Major < 0 || r.Major > maxMajor) {
		bad("Major", "must be from 0 to %d or AnyDevice (-1), not %d", maxMajor, r.Major)
	}
	if r.Minor != AnyDevice && (r.Minor < 0 || r.Minor > maxMinor) {
		bad("Minor", "must be from 0 to %d or AnyDevice (-1), not %d", maxMinor, r.Minor)
	}
	if !validAccess(r.Access) {
		bad("Access", "must be one or more of r, w and m, each once, not %q", r.Access)
	}
	return errs
}

func validAccess(a string) bool {
	if a == "" || len(a) > 3 {
		return false
	}
	for i, c := range a {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(a[:i], c) {
			return false
		}
	}
	return true
}

// deviceWrites returns the writes that apply rules in order: the file of
// the devices controller each goes to and what is written.
func deviceWrites(rules []DeviceRule) [][2]string {
	out := make([][2]string, len(rules))
	for i, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		out[i] = [2]string{file, r.String()}
	}
	return out
}
