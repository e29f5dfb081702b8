//go:build !amd64

package int80

const available = false

func syscall(nr uintptr) uintptr { panic("int80: not amd64") }
