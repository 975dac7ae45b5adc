#!/usr/bin/env bash
# Host instructions per guest instruction on the bare-metal mixed integer
# workload (the ELF bench/peers.sh builds), counted by callgrind, so a loaded
# machine does not disturb the figure. Two runs of different lengths are
# subtracted, which cancels start-up and loading:
#
#   bench/callgrind.sh [DISCO_BINARY] [EXTRA disco run ARGS...]
#   (default ./target/release/disco; e.g. bench/callgrind.sh ./target/release/disco --tier 1)
#
# CALLGRIND_T3_INLINE=1 measures tier 3 compiling on the CPU's thread instead
# (the example sim/examples/tier3_inline.rs; no BINARY or ARGS): with the
# compiler thread, valgrind's scheduling decides when the code arrives.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./target/release/disco}
shift || true
inline=${CALLGRIND_T3_INLINE:-}
if [ -n "$inline" ]; then
    cargo build -q --release -p disco-sim --example tier3_inline
    bin=./target/release/examples/tier3_inline
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v valgrind >/dev/null || { echo "SKIPPED: valgrind is not installed"; exit 0; }
command -v mips-linux-gnu-ld >/dev/null || { echo "SKIPPED: no MIPS cross binutils"; exit 0; }
elf() { # passes -> $work/w$passes.elf
    cargo run -q --release -p disco-sim --example workload_bin -- "$1" "$work/w$1.bin"
    printf '.set noreorder\n.text\n.globl _start\n_start:\n.incbin "%s"\n' "$work/w$1.bin" > "$work/w$1.S"
    mips-linux-gnu-as -march=r4000 -mabi=32 -EB "$work/w$1.S" -o "$work/w$1.o"
    mips-linux-gnu-ld -EB -N -Ttext=0x80001000 -e 0x80001000 --build-id=none -o "$work/w$1.elf" "$work/w$1.o"
}
measure() { # passes -> "guest_insns host_insns"
    local n=$1 insns ir
    shift
    local cmd=("$bin" run "$work/w$n.elf" "$@")
    [ -n "$inline" ] && cmd=("$bin" "$work/w$n.elf")
    insns=$("${cmd[@]}" --stats 2>&1 | awk '/^total:/ {print $2}')
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" "${cmd[@]}" >/dev/null 2>"$work/vg.$n"
    ir=$(awk '/^summary:/ {print $2}' "$work/cg.$n")
    echo "$insns $ir"
}
elf 100; elf 400
read -r g1 h1 < <(measure 100 "$@")
read -r g2 h2 < <(measure 400 "$@")
echo "binary: $bin $*"
echo "100 passes: $g1 guest insns, $h1 host insns"
echo "400 passes: $g2 guest insns, $h2 host insns"
echo "host insns per guest insn (difference): $(echo "$g1 $h1 $g2 $h2" | awk '{printf "%.2f", ($4-$2)/($3-$1)}')"
