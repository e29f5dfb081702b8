#include "textflag.h"

// func clone3(args unsafe.Pointer, size uintptr, hdr uintptr) (pid uintptr, errno uintptr)
//
// The parent returns the child's pid or the errno. The child never
// returns: it runs the program whose header is at hdr (see program.go for
// the layout) on registers alone, and ends in execve or exit_group.
TEXT ·clone3(SB),NOSPLIT|NOFRAME,$0-40
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVQ	hdr+16(FP), R12
	MOVQ	$435, AX // SYS_clone3
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $-4095
	JCS	parentok
	NEGQ	AX
	MOVQ	$0, pid+24(FP)
	MOVQ	AX, errno+32(FP)
	RET
parentok:
	MOVQ	AX, pid+24(FP)
	MOVQ	$0, errno+32(FP)
	RET

child:
	JMP	interp<>(SB)

// interp is the interpreter: see clone3.
TEXT interp<>(SB),NOSPLIT|NOFRAME,$0
	// R12 header, R13 number of steps, R14 step 0, BX step index,
	// R15 the current step. SYSCALL clobbers AX, CX and R11 only.
	MOVQ	24(R12), R13
	MOVQ	32(R12), R14
	XORQ	BX, BX

loop:
	CMPQ	BX, R13
	JCC	ranout
	MOVQ	BX, R15
	SHLQ	$7, R15
	ADDQ	R14, R15
	MOVQ	0(R15), AX
	CMPQ	AX, $-1
	JNE	call
	MOVQ	80(R15), BX // a jump
	JMP	loop

call:
	MOVQ	56(R15), CX // the load mask
	MOVQ	8(R15), DI
	BTQ	$0, CX
	JCC	a1
	MOVQ	(DI), DI
a1:
	MOVQ	16(R15), SI
	BTQ	$1, CX
	JCC	a2
	MOVQ	(SI), SI
a2:
	MOVQ	24(R15), DX
	BTQ	$2, CX
	JCC	a3
	MOVQ	(DX), DX
a3:
	MOVQ	32(R15), R10
	BTQ	$3, CX
	JCC	a4
	MOVQ	(R10), R10
a4:
	MOVQ	40(R15), R8
	BTQ	$4, CX
	JCC	a5
	MOVQ	(R8), R8
a5:
	MOVQ	48(R15), R9
	BTQ	$5, CX
	JCC	a6
	MOVQ	(R9), R9
a6:
	SYSCALL
	MOVQ	64(R15), CX // save the result
	TESTQ	CX, CX
	JEQ	nosave
	MOVQ	AX, (CX)
nosave:
	CMPQ	AX, $-4095
	JCS	ok
	NEGQ	AX // the errno
	MOVQ	72(R15), CX
	CMPQ	CX, AX
	JEQ	takea
	CMPQ	CX, $-1
	JEQ	takea
	MOVQ	88(R15), CX
	CMPQ	CX, AX
	JEQ	takeb
	CMPQ	CX, $-1
	JEQ	takeb
	JMP	fail
takea:
	MOVQ	80(R15), BX
	JMP	loop
takeb:
	MOVQ	96(R15), BX
	JMP	loop

ok:
	MOVQ	104(R15), CX // the wanted result plus one
	TESTQ	CX, CX
	JEQ	next
	DECQ	CX
	CMPQ	AX, CX
	JEQ	next
	MOVQ	120(R15), CX // where to go instead, plus one
	TESTQ	CX, CX
	JEQ	unexpected
	DECQ	CX
	MOVQ	CX, BX
	JMP	loop
unexpected:
	MOVQ	$71, AX // EPROTO
	JMP	fail
next:
	INCQ	BX
	JMP	loop

ranout:
	MOVQ	$-1, 8(R12)
	MOVQ	$8, 16(R12) // ENOEXEC: the program ended without an execve
	JMP	report

fail:
	MOVQ	AX, 16(R12)
	MOVQ	112(R15), CX
	MOVQ	CX, 8(R12)
report:
	MOVQ	$1, AX // SYS_write
	MOVQ	0(R12), DI
	LEAQ	8(R12), SI
	MOVQ	$16, DX
	SYSCALL
	MOVQ	$231, AX // SYS_exit_group
	MOVQ	$127, DI
	SYSCALL
	JMP	report

// func interpret(hdr uintptr)
//
// Runs the program on the calling thread; never returns. For the tests
// under qemu-user, which has no clone3.
TEXT ·interpret(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ	hdr+0(FP), R12
	JMP	interp<>(SB)
