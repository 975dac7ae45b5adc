#!/usr/bin/env bash
# Compares two disco binaries on guest-kernel code under the monitor, each
# policy: the trace (exc,tlb,mmio,irq), `--dump-regs` and `--stats` (less
# the host-speed figure) must be byte-identical, traced and untraced (the
# translator takes other paths when tracing is off: superblocks). Runs:
# the unrelinked KSEG0 loop (bench/callgrind.sh's ELF, 20 passes) natively
# and under exec=direct|translate|adaptive; kestrel, smp and timer under
# each policy; kestrel-bench under translate and adaptive; two kestrel VMs.
# Prints one line per run; exit status 1 if any differs (last output:
# bench/compare-monitor.txt).
#
#   bench/compare-monitor.sh OLD_BINARY NEW_BINARY
set -uo pipefail
cd "$(dirname "$0")/.."
old=$1; new=$2
img=guest-kits/images
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v mips-linux-gnu-ld >/dev/null || { echo "SKIPPED: no MIPS cross binutils"; exit 0; }
cargo run -q --release -p disco-sim --example workload_bin -- 20 "$work/w.bin"
printf '.set noreorder\n.text\n.globl _start\n_start:\n.incbin "%s"\n' "$work/w.bin" > "$work/w.S"
mips-linux-gnu-as -march=r4000 -mabi=32 -EB "$work/w.S" -o "$work/w.o"
mips-linux-gnu-ld -EB -N -Ttext=0x80001000 -e 0x80001000 --build-id=none -o "$work/w.elf" "$work/w.o"
fail=0
one() { # label args...
    local label=$1 a b
    shift
    a=$("$old" run "$@" --dump-regs --stats 2>&1 | sed 's/, [0-9.]* host MIPS//' | md5sum)
    b=$("$new" run "$@" --dump-regs --stats 2>&1 | sed 's/, [0-9.]* host MIPS//' | md5sum)
    if [ "$a" = "$b" ]; then echo "same      $label"; else echo "DIFFERENT $label"; fail=1; fi
}
check() { # name args...
    local name=$1
    shift
    one "$name (trace exc,tlb,mmio,irq, --dump-regs, --stats)" "$@" --trace exc,tlb,mmio,irq
    one "$name (untraced: --dump-regs, --stats)" "$@"
}
check "KSEG0 loop, natively" "$work/w.elf"
for p in direct translate adaptive; do
    check "KSEG0 loop, exec=$p" --vm "$work/w.elf,exec=$p"
    for k in kestrel smp timer; do
        check "$k, exec=$p" --vm "$img/$k.elf,exec=$p" --max-cycles 300000000
    done
done
for p in translate adaptive; do
    check "kestrel-bench, exec=$p" --vm "$img/kestrel-bench.elf,exec=$p" --max-cycles 400000000
done
check "two kestrel VMs" --vm "$img/kestrel.elf" --vm "$img/kestrel.elf" --max-cycles 300000000
exit $fail
