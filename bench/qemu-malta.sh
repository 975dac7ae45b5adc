#!/usr/bin/env bash
# QEMU as a peer (bench/peers.sh, tests/qemu_peer.rs): runs an ELF of the
# built-in mixed integer workload built with Malta's halt (`workload_bin
# PASSES OUT.bin malta`, sim::workload::Halt::Malta) on QEMU's Malta board,
# TCG, CPU R4000. The R4000 is only in qemu-system-mips64 (qemu-system-mips
# offers MIPS32 CPUs only); the workload's 32-bit code runs on it as on
# disco's R4000 (KX clear, addresses sign-extended).
#
#   bench/qemu-malta.sh run ELF       run it; QEMU exits when the workload
#                                     writes SOFTRES (-no-reboot)
#   bench/qemu-malta.sh count ELF     prints "INSTRUCTIONS HALT_PC": what QEMU
#                                     executed of the workload, and the last PC
#   bench/qemu-malta.sh regs ELF PC   prints "v0 X hi X lo X" as PC executes
#
# Counting: with one guest instruction per translated block and no chaining
# of blocks, QEMU's `-d exec` log has a "Trace" line for every instruction
# it executes, plus a "Stopped execution of TB chain before" line for a
# block it entered and left before executing it (another thread asked the
# CPU to exit), which then runs again: the count is the first minus the
# second, at KSEG0 addresses only. That leaves out the boot code QEMU's
# `-kernel` writes at the reset vector (KSEG1, 0xBFC00000: it sets up the
# GT-64120 and a0-a3, then jumps to the ELF's entry; 103 instructions in
# QEMU 7.2), which the timed runs include. The log costs about 5 µs an
# instruction, so count a short build.
set -euo pipefail
qemu=qemu-system-mips64
base=(-M malta -cpu R4000 -nodefaults -display none -no-reboot)
# QEMU 8.1 renamed -singlestep (7.2 has only the old name).
if "$qemu" -help | grep -q one-insn-per-tb; then
    one=(-accel tcg,one-insn-per-tb=on)
else
    one=(-singlestep)
fi
mode=${1:?usage: qemu-malta.sh run|count|regs ELF [PC]}
elf=${2:?usage: qemu-malta.sh run|count|regs ELF [PC]}
case $mode in
run)
    exec timeout 600 "$qemu" "${base[@]}" -kernel "$elf" </dev/null
    ;;
count)
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    "$qemu" "${base[@]}" "${one[@]}" -d exec,nochain -D "$log" -kernel "$elf" </dev/null
    awk '
        /^Trace/ { split($0, f, "/"); pc = f[2]
                   if (pc ~ /^ffffffff[89]/) { n++; last = pc } }
        /^Stopped execution/ { match($0, /\[[0-9a-f]+\]/)
                   if (substr($0, RSTART + 1, RLENGTH - 2) ~ /^ffffffff[89]/) n-- }
        END { printf "%d 0x%s\n", n, last }' "$log"
    ;;
regs)
    pc=${3:?usage: qemu-malta.sh regs ELF PC}
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    "$qemu" "${base[@]}" "${one[@]}" -d cpu,nochain -dfilter "$pc+4" -D "$log" -kernel "$elf" </dev/null
    awk '
        /^pc=/ { for (i = 1; i <= NF; i++) { split($i, kv, "=")
                     if (kv[1] == "HI") hi = kv[2]; if (kv[1] == "LO") lo = kv[2] } }
        /^GPR00:/ { for (i = 1; i < NF; i++) if ($i == "v0") v0 = "0x" $(i + 1) }
        END { if (v0 == "") exit 1; print "v0", v0, "hi", hi, "lo", lo }' "$log"
    ;;
*)
    echo "usage: qemu-malta.sh run|count|regs ELF [PC]" >&2
    exit 2
    ;;
esac
