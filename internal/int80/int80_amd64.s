#include "textflag.h"

// func syscall(nr uintptr) uintptr
TEXT ·syscall(SB), NOSPLIT, $0-16
	MOVQ nr+0(FP), AX
	INT  $0x80
	MOVQ AX, ret+8(FP)
	RET
