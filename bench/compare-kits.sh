#!/usr/bin/env bash
# (Last output: bench/compare-kits.txt.)
# Compares two disco binaries (or two tiers of one) on every guest kit: the
# trace and `--dump-regs` output must be byte-identical, and the statistics
# apart from the host-speed figure. Prints one line per kit and run.
#
#   bench/compare-kits.sh OLD_BINARY NEW_BINARY [EXTRA NEW ARGS, e.g. --tier 1]
#
# The small kits are traced with every category (insn included); kestrel's
# runs are too long for that and are traced with exc,tlb,mmio,irq.
set -uo pipefail
cd "$(dirname "$0")/.."
old=$1; new=$2; shift 2
img=guest-kits/images
fail=0
check() { # name trace-categories args...
    local name=$1 cats=$2
    shift 2
    local a b
    a=$("$old" run "$@" --trace "$cats" --dump-regs --stats 2>&1 | sed 's/, [0-9.]* host MIPS//' | md5sum)
    b=$("$new" run "$@" --trace "$cats" --dump-regs --stats "${extra[@]}" 2>&1 | sed 's/, [0-9.]* host MIPS//' | md5sum)
    if [ "$a" = "$b" ]; then echo "same      $name (trace $cats, --dump-regs, --stats)"; else echo "DIFFERENT $name (traced)"; fail=1; fi
    # Untraced too: the traced loop and the fast path are different code.
    a=$("$old" run "$@" --dump-regs --stats 2>&1 | sed 's/, [0-9.]* host MIPS//' | md5sum)
    b=$("$new" run "$@" --dump-regs --stats "${extra[@]}" 2>&1 | sed 's/, [0-9.]* host MIPS//' | md5sum)
    if [ "$a" = "$b" ]; then echo "same      $name (untraced: --dump-regs, --stats)"; else echo "DIFFERENT $name (untraced)"; fail=1; fi
}
extra=("$@")
for k in hello console cpustate mp rtc timer; do check "$k" all "$img/$k.elf" --max-cycles 50000000; done
check "smp, 4 CPUs" all "$img/smp.elf" --cpus 4 --max-cycles 50000000
check "disk" all "$img/disk.elf" --disk "$img/disk.img"
check "kestrel" exc,tlb,mmio,irq "$img/kestrel.elf" --max-cycles 300000000
check "kestrel, 4 CPUs" exc,tlb,mmio,irq "$img/kestrel.elf" --cpus 4 --max-cycles 300000000
check "kestrel-bench" exc,tlb,mmio,irq "$img/kestrel-bench.elf" --max-cycles 400000000
check "kestrel under the monitor" exc,tlb,mmio,irq --vm "$img/kestrel.elf" --max-cycles 300000000
check "two kestrel VMs" exc,tlb,mmio,irq --vm "$img/kestrel.elf" --vm "$img/kestrel.elf" --max-cycles 300000000
exit $fail
