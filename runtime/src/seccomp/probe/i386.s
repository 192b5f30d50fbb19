# An i386 program for the compat-architecture seccomp test (seccomp/tests.rs), static and
# without a C library, so that a 64-bit host's binutils alone build it (as --32, ld -m elf_i386):
# writes "i386\n", then tries keyctl(2) and unshare(CLONE_NEWUSER) and exits with
# 1 if keyctl failed with EPERM, plus 2 if unshare did.
    .globl _start
    .text
_start:
    movl $4, %eax               # write(1, msg, 5)
    movl $1, %ebx
    movl $msg, %ecx
    movl $5, %edx
    int $0x80
    xorl %esi, %esi
    movl $288, %eax             # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    xorl %ebx, %ebx
    movl $-3, %ecx
    xorl %edx, %edx
    int $0x80
    cmpl $-1, %eax              # -EPERM
    jne 1f
    orl $1, %esi
1:
    movl $310, %eax             # unshare(CLONE_NEWUSER)
    movl $0x10000000, %ebx
    int $0x80
    cmpl $-1, %eax
    jne 2f
    orl $2, %esi
2:
    movl $1, %eax               # exit(esi)
    movl %esi, %ebx
    int $0x80

    .data
msg:
    .ascii "i386\n"
