# shellcheck shell=bash
# Shared helpers of the board harness (sourced by tests/board/run and its lib/ files).

# Prints a harness message on stderr, prefixed so it stands apart from the board's serial output.
say() {
  echo "board [+${SECONDS}s]: $*" >&2
}

# Fails the run naming the step that failed.
die() {
  echo "board: FAIL: $*" >&2
  exit 1
}

# Board architecture facts: Debian's name, qemu's binary, the serial console and the kernel
# package for each architecture the harness supports.
arch_facts() {
  case "$1" in
    x86_64)
      DEB_ARCH=amd64
      QEMU_BIN=qemu-system-x86_64
      QEMU_PACKAGE=qemu-system-x86
      QEMU_MACHINE=()
      CONSOLE=ttyS0
      KERNEL_PACKAGE=linux-image-cloud-amd64
      ;;
    aarch64)
      DEB_ARCH=arm64
      QEMU_BIN=qemu-system-aarch64
      QEMU_PACKAGE=qemu-system-arm
      QEMU_MACHINE=(-M virt -cpu cortex-a72)
      CONSOLE=ttyAMA0
      KERNEL_PACKAGE=linux-image-cloud-arm64
      ;;
    *) die "unknown board architecture '$1' (choose x86_64 or aarch64)" ;;
  esac
}
