#!/usr/bin/env bash
# Runs the same bare-metal ELF (the built-in mixed integer workload) on
# disco and on GXemul's testmips machine, and prints each one's host MIPS
# and the ratio. Installs GXemul from Debian's packages when missing (as
# root); skips a peer it cannot install, saying so.
#
#   bench/peers.sh [PASSES]      (default 20000: about 196 million instructions)
#
# QEMU is not compared: it has no testmips machine, so the same ELF cannot
# halt there (its Malta board halts through a different device); a QEMU run
# would need another binary, which would not be "the same ELF".
set -euo pipefail
cd "$(dirname "$0")/.."
passes=${1:-20000}
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

secs() { # command... -> wall seconds of the fastest of 3 runs
    local best=""
    for _ in 1 2 3; do
        local t0 t1
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || true
        t1=$(date +%s.%N)
        best=$(echo "$t0 $t1 $best" | awk '{d=$2-$1; if ($3=="" || d<$3) print d; else print $3}')
    done
    echo "$best"
}

insns=$(./target/release/disco run "$work/w.elf" --stats | awk '/^total:/ {print $2}')
disco_s=$(secs ./target/release/disco run "$work/w.elf")
printf '%-8s %12s instructions  %8.3f s  %8.1f MIPS\n' disco "$insns" "$disco_s" "$(echo "$insns $disco_s" | awk '{print $1/$2/1e6}')"

need gxemul || install gxemul
if need gxemul; then
    # GXemul needs a standard input that stays open.
    gx() { sleep 600 | timeout 300 gxemul -q -E testmips -C R4000 "$work/w.elf" & local p=$!; wait_for_gx "$p"; }
    wait_for_gx() { # the pipeline ends when gxemul halts; stop the sleep then
        while kill -0 "$1" 2>/dev/null && pgrep -f "gxemul -q -E testmips" >/dev/null; do sleep 0.01; done
        pkill -P $$ sleep 2>/dev/null || true
    }
    gx_s=$(secs gx)
    printf '%-8s %12s instructions  %8.3f s  %8.1f MIPS\n' gxemul "$insns" "$gx_s" "$(echo "$insns $gx_s" | awk '{print $1/$2/1e6}')"
    echo "ratio disco/gxemul (host MIPS): $(echo "$gx_s $disco_s" | awk '{printf "%.2f", $1/$2}')"
else
    echo "SKIPPED: gxemul is not installed and could not be installed"
fi
echo "qemu: not compared (no testmips machine; see the header of this script)"
