// Package int80 lets the seccomp tests and the sandbox's attack program
// make a system call through the i386 ABI (int $0x80) from a 64-bit
// process, the way an attacker would try to reach calls that a filter only
// checks by their x86_64 numbers.
package int80

// Available reports whether this architecture has the instruction at all.
const Available = available

// Syscall makes i386 system call nr with no arguments and returns the
// kernel's result: a value, or minus an errno. It crashes the process with
// SIGSEGV when the kernel runs without IA32 emulation.
func Syscall(nr uintptr) uintptr { return syscall(nr) }
