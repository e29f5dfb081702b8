package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sizeValue is a flag holding a number of bytes, written with an optional
// k, m or g suffix (powers of 1024): 512k, 256m, 1g, 1.5g.
type sizeValue struct{ p *int64 }

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (v sizeValue) Type() string { return "SIZE" }

func (v sizeValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return formatSize(*v.p)
}

// parseSize reads a size such as "64m". The suffix is one of k, m, g or t,
// in either case and optionally followed by "b" or "ib"; a bare number is
// in bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || strings.ContainsAny(t, "xXpPeEnN_") {
		return 0, fmt.Errorf("%q is not a size (a number of bytes with an optional k, m or g suffix)", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	b := math.Round(f * mult)
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(b), nil
}

// formatSize writes n with the largest binary suffix that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// durationValue is a flag holding a duration, written as Go writes them
// (1.5s, 300ms, 2m) or as a plain number of seconds, as nsjail takes them.
type durationValue struct{ p *time.Duration }

func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func (v durationValue) Type() string { return "DURATION" }

func (v durationValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return v.p.String()
}

func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "xXpPeEnN_") {
		return 0, fmt.Errorf("%q is not a duration (such as 1.5s, 300ms or a number of seconds)", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if f*float64(time.Second) > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// userValue is the flag --user UID[:GID]. Without a GID, the group is the
// uid's number.
type userValue struct {
	uid, gid *int
	set      *bool
}

func (v userValue) Set(s string) error {
	u, g, hasGID := strings.Cut(s, ":")
	uid, err := parseID(u)
	if err != nil {
		return fmt.Errorf("uid: %w", err)
	}
	gid := uid
	if hasGID {
		if gid, err = parseID(g); err != nil {
			return fmt.Errorf("gid: %w", err)
		}
	}
	*v.uid, *v.gid, *v.set = uid, gid, true
	return nil
}

func (v userValue) Type() string { return "UID[:GID]" }

func (v userValue) String() string {
	if v.set == nil || !*v.set {
		return ""
	}
	return fmt.Sprintf("%d:%d", *v.uid, *v.gid)
}

func parseID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number from 0 to %d", s, math.MaxInt32)
	}
	return int(n), nil
}

// pairValue is a flag that takes two arguments, as bwrap's --bind SRC DST
// does. pflag hands it the first; the parser (see parseArgs) takes the
// second from the arguments that follow.
type pairValue struct {
	name  string // the flag's name, for errors
	usage string // the names of the two arguments, such as "SRC DST"
	p     *parser
	add   func(first, second string) error
}

func (v *pairValue) Set(s string) error {
	v.p.pending, v.p.pendingFirst = v, s
	return nil
}

func (v *pairValue) Type() string   { return v.usage }
func (v *pairValue) String() string { return "" }
