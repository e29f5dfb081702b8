# The sandbox's pid 1 on amd64: see ../doc.go. Assembled by ../gen.go.
.intel_syntax noprefix
.text
.globl _start
_start:
	# r13: the pid to watch, argv[1] in decimal; 0 (none) without it.
	xor	r13d, r13d
	cmp	qword ptr [rsp], 2	# argc
	jb	setup
	mov	rsi, [rsp+16]		# argv[1]
digit:
	movzx	eax, byte ptr [rsi]
	sub	eax, 0x30
	cmp	eax, 9
	ja	setup			# up to the first byte that is not a digit
	imul	r13, r13, 10
	add	r13, rax
	inc	rsi
	jmp	digit
setup:
	sub	rsp, 256
	# struct sigaction at rsp+160 for SIGCHLD: handler, flags, restorer, mask
	lea	rax, [rip + handler]
	mov	[rsp+160], rax
	mov	qword ptr [rsp+168], 0x04000001	# SA_RESTORER | SA_NOCLDSTOP
	lea	rax, [rip + restorer]
	mov	[rsp+176], rax
	mov	qword ptr [rsp+184], 0
	mov	qword ptr [rsp+192], 0x10000	# the set {SIGCHLD}
	mov	qword ptr [rsp+200], 0		# the empty set
	xor	edi, edi			# SIG_BLOCK
	lea	rsi, [rsp+192]
	xor	edx, edx
	mov	r10d, 8
	mov	eax, 14				# rt_sigprocmask
	syscall
	mov	edi, 17				# SIGCHLD
	lea	rsi, [rsp+160]
	xor	edx, edx
	mov	r10d, 8
	mov	eax, 13				# rt_sigaction
	syscall
reap:
	mov	rdi, -1				# any child
	mov	rsi, rsp			# the status at rsp, the rusage at rsp+8
	mov	edx, 1				# WNOHANG
	lea	r10, [rsp+8]
	mov	eax, 61				# wait4
	syscall
	test	rax, rax
	jg	reaped
	je	sleep
	cmp	rax, -4				# EINTR
	je	reap
	cmp	rax, -10			# ECHILD
	jne	fail
sleep:
	lea	rdi, [rsp+200]
	mov	esi, 8
	mov	eax, 130			# rt_sigsuspend: until a SIGCHLD
	syscall
	jmp	reap
reaped:
	test	r13, r13
	jz	reap
	cmp	rax, r13			# the command
	jne	reap
	mov	edi, 3				# the report pipe
	mov	rsi, rsp
	mov	edx, 152
	mov	eax, 1				# write
	syscall
	xor	edi, edi
	mov	eax, 231			# exit_group
	syscall
fail:
	mov	edi, 1
	mov	eax, 231			# exit_group
	syscall
handler:
	ret
restorer:
	mov	eax, 15				# rt_sigreturn
	syscall
