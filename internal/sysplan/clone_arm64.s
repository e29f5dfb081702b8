#include "textflag.h"

// func clone3(args unsafe.Pointer, size uintptr, hdr uintptr) (pid uintptr, errno uintptr)
//
// See clone_amd64.s: the same interpreter for arm64.
TEXT ·clone3(SB),NOSPLIT|NOFRAME,$0-40
	MOVD	args+0(FP), R0
	MOVD	size+8(FP), R1
	MOVD	hdr+16(FP), R19
	MOVD	$435, R8 // SYS_clone3
	SVC
	CMP	$0, R0
	BEQ	child
	CMN	$4095, R0
	BCC	parentok
	NEG	R0, R0
	MOVD	ZR, pid+24(FP)
	MOVD	R0, errno+32(FP)
	RET
parentok:
	MOVD	R0, pid+24(FP)
	MOVD	ZR, errno+32(FP)
	RET

child:
	B	interp<>(SB)

// interp is the interpreter: see clone3.
TEXT interp<>(SB),NOSPLIT|NOFRAME,$0
	// R19 header, R20 number of steps, R21 step 0, R22 step index,
	// R23 the current step, R24 the load mask. SVC clobbers R0 only.
	MOVD	24(R19), R20
	MOVD	32(R19), R21
	MOVD	ZR, R22

loop:
	CMP	R20, R22
	BHS	ranout
	ADD	R22<<7, R21, R23
	MOVD	0(R23), R8
	CMN	$1, R8
	BNE	call
	MOVD	80(R23), R22 // a jump
	B	loop

call:
	MOVD	56(R23), R24
	MOVD	8(R23), R0
	TBZ	$0, R24, a1
	MOVD	(R0), R0
a1:
	MOVD	16(R23), R1
	TBZ	$1, R24, a2
	MOVD	(R1), R1
a2:
	MOVD	24(R23), R2
	TBZ	$2, R24, a3
	MOVD	(R2), R2
a3:
	MOVD	32(R23), R3
	TBZ	$3, R24, a4
	MOVD	(R3), R3
a4:
	MOVD	40(R23), R4
	TBZ	$4, R24, a5
	MOVD	(R4), R4
a5:
	MOVD	48(R23), R5
	TBZ	$5, R24, a6
	MOVD	(R5), R5
a6:
	SVC
	MOVD	64(R23), R9 // save the result
	CBZ	R9, nosave
	MOVD	R0, (R9)
nosave:
	CMN	$4095, R0
	BCC	ok
	NEG	R0, R0 // the errno
	MOVD	72(R23), R9
	CMP	R9, R0
	BEQ	takea
	CMN	$1, R9
	BEQ	takea
	MOVD	88(R23), R9
	CMP	R9, R0
	BEQ	takeb
	CMN	$1, R9
	BEQ	takeb
	B	fail
takea:
	MOVD	80(R23), R22
	B	loop
takeb:
	MOVD	96(R23), R22
	B	loop

ok:
	MOVD	104(R23), R9 // the wanted result plus one
	CBZ	R9, next
	SUB	$1, R9, R9
	CMP	R9, R0
	BEQ	next
	MOVD	120(R23), R9 // where to go instead, plus one
	CBZ	R9, unexpected
	SUB	$1, R9, R22
	B	loop
unexpected:
	MOVD	$71, R0 // EPROTO
	B	fail
next:
	ADD	$1, R22, R22
	B	loop

ranout:
	MOVD	$-1, R9
	MOVD	R9, 8(R19)
	MOVD	$8, R9 // ENOEXEC: the program ended without an execve
	MOVD	R9, 16(R19)
	B	report

fail:
	MOVD	R0, 16(R19)
	MOVD	112(R23), R9
	MOVD	R9, 8(R19)
report:
	MOVD	$64, R8 // SYS_write
	MOVD	0(R19), R0
	ADD	$8, R19, R1
	MOVD	$16, R2
	SVC
	MOVD	$94, R8 // SYS_exit_group
	MOVD	$127, R0
	SVC
	B	report

// func interpret(hdr uintptr)
//
// Runs the program on the calling thread; never returns. For the tests
// under qemu-user, which has no clone3.
TEXT ·interpret(SB),NOSPLIT|NOFRAME,$0-8
	MOVD	hdr+0(FP), R19
	B	interp<>(SB)
