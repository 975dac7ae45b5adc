#!/usr/bin/env bash
# Runs the same bare-metal ELF (the built-in mixed integer workload) on
# disco and on GXemul's testmips machine, and prints each one's host MIPS
# and the ratio. Installs GXemul from Debian's packages when missing (as
# root); skips a peer it cannot install, saying so.
#
#   bench/peers.sh [PASSES] [ROUNDS]   (default 20000: about 196 million
#                                       instructions; 5 rounds)
#
# The peers run interleaved, one round at a time (disco tiers 1, 2 and 3,
# GXemul, then again), and each figure is the median over the rounds with
# the min and max, so a change in the machine's load hits every peer alike.
# The load average at the start is printed with the results.
#
# QEMU is not compared: it has no testmips machine, so the same ELF cannot
# halt there (its Malta board halts through a different device); a QEMU run
# would need another binary, which would not be "the same ELF".
set -euo pipefail
cd "$(dirname "$0")/.."
passes=${1:-20000}
rounds=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need() { command -v "$1" >/dev/null 2>&1; }
install() {
    if [ "$(id -u)" = 0 ] && need apt-get; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || true
    fi
}

need mips-linux-gnu-ld || install binutils-mips-linux-gnu gcc-mips-linux-gnu
if ! need mips-linux-gnu-ld; then
    echo "SKIPPED: the MIPS cross binutils are not installed; cannot build the ELF"
    exit 0
fi
cargo build -q --release
cargo run -q --release -p disco-sim --example workload_bin -- "$passes" "$work/w.bin"
printf '.set noreorder\n.text\n.globl _start\n_start:\n.incbin "%s"\n' "$work/w.bin" > "$work/w.S"
mips-linux-gnu-as -march=r4000 -mabi=32 -EB "$work/w.S" -o "$work/w.o"
mips-linux-gnu-ld -EB -N -Ttext=0x80001000 -e 0x80001000 --build-id=none -o "$work/w.elf" "$work/w.o"

wall() { # command... -> wall seconds of one run
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{print $2-$1}'
}
median() { # seconds... -> "median min max"
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; print m, v[1], v[NR]}'
}
report() { # name insns "median min max"
    echo "$2 $3" | awk -v n="$1" '{printf "%-8s %12s instructions  %8.3f s  %8.1f MIPS (%.1f-%.1f)\n", n, $1, $2, $1/$2/1e6, $1/$4/1e6, $1/$3/1e6}'
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
insns=$(./target/release/disco run "$work/w.elf" --stats | awk '/^total:/ {print $2}')
need gxemul || install gxemul
gx() { # GXemul needs a standard input that stays open; stop the sleep once it halts.
    sleep 600 | timeout 300 gxemul -q -E testmips -C R4000 "$work/w.elf" &
    local p=$!
    while kill -0 "$p" 2>/dev/null && pgrep -f "gxemul -q -E testmips" >/dev/null; do sleep 0.01; done
    pkill -P $$ sleep 2>/dev/null || true
}
t1=(); t2=(); t3=(); tg=()
for _ in $(seq "$rounds"); do
    t1+=("$(wall ./target/release/disco run "$work/w.elf" --tier 1)")
    t2+=("$(wall ./target/release/disco run "$work/w.elf" --tier 2)")
    t3+=("$(wall ./target/release/disco run "$work/w.elf" --tier 3)")
    if need gxemul; then tg+=("$(wall gx)"); fi
done
d1=$(median "${t1[@]}"); d2=$(median "${t2[@]}"); d3=$(median "${t3[@]}")
report "disco-t1" "$insns" "$d1"
report "disco-t2" "$insns" "$d2"
report "disco-t3" "$insns" "$d3"
if need gxemul; then
    dg=$(median "${tg[@]}")
    report gxemul "$insns" "$dg"
    echo "ratio disco tier 2/gxemul (host MIPS, medians of $rounds interleaved rounds): $(echo "${dg%% *} ${d2%% *}" | awk '{printf "%.2f", $1/$2}')"
    echo "ratio disco tier 3/gxemul (host MIPS, medians of $rounds interleaved rounds): $(echo "${dg%% *} ${d3%% *}" | awk '{printf "%.2f", $1/$2}')"
else
    echo "SKIPPED: gxemul is not installed and could not be installed"
fi
echo "qemu: not compared (no testmips machine; see the header of this script)"
