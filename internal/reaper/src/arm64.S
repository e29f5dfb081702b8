// The sandbox's pid 1 on arm64: see ../doc.go. Assembled by ../gen.go.
.text
.globl _start
_start:
	// x19: the pid to watch, argv[1] in decimal; 0 (none) without it.
	mov	x19, #0
	ldr	x9, [sp]		// argc
	cmp	x9, #2
	b.lo	setup
	ldr	x10, [sp, #16]		// argv[1]
	mov	x12, #10
digit:
	ldrb	w11, [x10], #1
	sub	w11, w11, #0x30
	cmp	w11, #9
	b.hi	setup			// up to the first byte that is not a digit
	madd	x19, x19, x12, x11
	b	digit
setup:
	sub	sp, sp, #256
	// struct sigaction at sp+160 for SIGCHLD: handler, flags, restorer, mask
	adr	x0, handler
	str	x0, [sp, #160]
	mov	x0, #0x1		// SA_NOCLDSTOP
	movk	x0, #0x0400, lsl #16	// | SA_RESTORER
	str	x0, [sp, #168]
	adr	x0, restorer
	str	x0, [sp, #176]
	str	xzr, [sp, #184]
	mov	x0, #0x10000		// the set {SIGCHLD}
	str	x0, [sp, #192]
	str	xzr, [sp, #200]		// the empty set
	mov	x0, #0			// SIG_BLOCK
	add	x1, sp, #192
	mov	x2, #0
	mov	x3, #8
	mov	x8, #135		// rt_sigprocmask
	svc	#0
	mov	x0, #17			// SIGCHLD
	add	x1, sp, #160
	mov	x2, #0
	mov	x3, #8
	mov	x8, #134		// rt_sigaction
	svc	#0
reap:
	mov	x0, #-1			// any child
	mov	x1, sp			// the status at sp, the rusage at sp+8
	mov	x2, #1			// WNOHANG
	add	x3, sp, #8
	mov	x8, #260		// wait4
	svc	#0
	cmp	x0, #0
	b.gt	reaped
	b.eq	sleep
	cmn	x0, #4			// EINTR
	b.eq	reap
	cmn	x0, #10			// ECHILD
	b.ne	fail
sleep:
	add	x0, sp, #200
	mov	x1, #8
	mov	x8, #133		// rt_sigsuspend: until a SIGCHLD
	svc	#0
	b	reap
reaped:
	cbz	x19, reap
	cmp	x0, x19			// the command
	b.ne	reap
	mov	x0, #3			// the report pipe
	mov	x1, sp
	mov	x2, #152
	mov	x8, #64			// write
	svc	#0
	mov	x0, #0
	mov	x8, #94			// exit_group
	svc	#0
fail:
	mov	x0, #1
	mov	x8, #94			// exit_group
	svc	#0
handler:
	ret
restorer:
	mov	x8, #139		// rt_sigreturn
	svc	#0
