package int80

const available = true

func syscall(nr uintptr) uintptr
