#!/usr/bin/env bash
# Runs the same bare-metal workload (the built-in mixed integer loop,
# sim::workload) on disco, on GXemul's testmips machine and on QEMU's Malta
# board, and prints each one's host MIPS and the ratios. Installs GXemul
# and QEMU from Debian's packages when missing (as root); skips a peer it
# cannot install, saying so.
#
#   bench/peers.sh [PASSES] [ROUNDS]   (default 20000: about 196 million
#                                       instructions; 5 rounds)
#
# The peers run interleaved, one round at a time (disco tiers 1, 2 and 3,
# GXemul, QEMU, then again), and each figure is the median over the rounds
# with the min and max, so a change in the machine's load hits every peer
# alike. The load average at the start is printed with the results. Every
# round also runs each peer on a one-pass build: the "net" figures subtract
# that run's instructions and time (start-up, loading, QEMU's board set-up),
# which weigh most on the fastest peer.
#
# QEMU has no testmips machine: it runs the workload built with Malta's halt
# (sim::workload::Halt::Malta: the same instructions at the same addresses
# but for one 4-word slot) through bench/qemu-malta.sh, CPU R4000. Before
# the rounds, the script checks that QEMU executes as many of the workload's
# instructions as disco on a 20-pass build (counted in QEMU's execution log)
# and that it ends the timed build with disco's v0 (the checksum), HI and LO.
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
build() { # NAME PASSES [malta] -> $work/NAME.elf
    cargo run -q --release -p disco-sim --example workload_bin -- "$2" "$work/$1.bin" ${3:-}
    printf '.set noreorder\n.text\n.globl _start\n_start:\n.incbin "%s"\n' "$work/$1.bin" > "$work/$1.S"
    mips-linux-gnu-as -march=r4000 -mabi=32 -EB "$work/$1.S" -o "$work/$1.o"
    mips-linux-gnu-ld -EB -N -Ttext=0x80001000 -e 0x80001000 --build-id=none -o "$work/$1.elf" "$work/$1.o"
}
build w "$passes"
build w1 1
disco() { ./target/release/disco run "$@"; }
count() { disco "$1" --stats | awk '/^total:/ {print $2}'; }
regs() { # disco's v0, HI and LO at the end, in bench/qemu-malta.sh's form
    disco "$1" --dump-regs | awk '{for (i = 1; i < NF; i++) r[$i] = $(i + 1)}
        END {print "v0", r["v0"], "hi", r["hi"], "lo", r["lo"]}'
}

wall() { # command... -> wall seconds of one run
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{print $2-$1}'
}
spread() { # values... -> "median min max"
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; print m, v[1], v[NR]}'
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
insns=$(count "$work/w.elf")
insns1=$(count "$work/w1.elf")
need gxemul || install gxemul
need qemu-system-mips64 || install qemu-system-mips
if need qemu-system-mips64; then
    build m "$passes" malta
    build m1 1 malta
    build c 20
    build mc 20 malta
    read -r qn qpc < <(bash bench/qemu-malta.sh count "$work/mc.elf")
    dn=$(count "$work/c.elf")
    qr=$(bash bench/qemu-malta.sh regs "$work/m.elf" "$qpc")
    dr=$(regs "$work/w.elf")
    echo "qemu: 20 passes: $qn instructions executed (QEMU's exec log), disco $dn"
    echo "qemu: $passes passes, at the halt: $qr; disco: $dr"
    if [ "$qn" != "$dn" ] || [ "$qr" != "$dr" ]; then
        echo "FAILED: QEMU does not run the same work as disco; QEMU not timed"
        qemu=no
    fi
fi
gx() { # GXemul needs a standard input that stays open: a sleep's pipe,
    # stopped once GXemul halts. GXemul runs in the foreground, so its time
    # is its own (the loop that polled for its end every 10 ms added 30 to
    # 100 ms to each of its runs, about 5% of a timed one).
    local in
    exec {in}< <(exec sleep 600)
    local s=$!
    timeout 300 gxemul -q -E testmips -C R4000 "$1" <&"$in"
    exec {in}<&-
    kill "$s" 2>/dev/null || true
}
names=(disco-t1 disco-t2 disco-t3)
need gxemul && names+=(gxemul)
need qemu-system-mips64 && [ "${qemu:-}" != no ] && names+=(qemu)
run() { # NAME PASSES-SUFFIX -> wall seconds
    case $1 in
    disco-t?) wall disco "$work/w$2.elf" --tier "${1#disco-t}" ;;
    gxemul) wall gx "$work/w$2.elf" ;;
    qemu) wall bash bench/qemu-malta.sh run "$work/m$2.elf" ;;
    esac
}
declare -A full net
for _ in $(seq "$rounds"); do
    for n in "${names[@]}"; do
        t=$(run "$n" "")
        t1=$(run "$n" 1)
        full[$n]+=" $t"
        net[$n]+=" $(echo "$t $t1" | awk '{print $1-$2}')"
    done
done
declare -A med netmed
for n in "${names[@]}"; do
    # shellcheck disable=SC2086
    read -r m lo hi < <(spread ${full[$n]})
    # shellcheck disable=SC2086
    read -r nm nlo nhi < <(spread ${net[$n]})
    med[$n]=$m
    netmed[$n]=$nm
    echo "$n $insns $m $lo $hi $((insns - insns1)) $nm $nlo $nhi" | awk '{
        printf "%-8s %12s instructions  %8.3f s  %8.1f MIPS (%.1f-%.1f)   net %8.1f MIPS (%.1f-%.1f)\n",
            $1, $2, $3, $2/$3/1e6, $2/$5/1e6, $2/$4/1e6, $6/$7/1e6, $6/$9/1e6, $6/$8/1e6}'
done
need gxemul || echo "SKIPPED: gxemul is not installed and could not be installed"
need qemu-system-mips64 || echo "SKIPPED: qemu-system-mips64 is not installed and could not be installed"
for peer in gxemul qemu; do
    [ -n "${med[$peer]:-}" ] || continue
    for t in 2 3; do
        echo "ratio disco tier $t/$peer (host MIPS, medians of $rounds interleaved rounds): $(echo "${med[$peer]} ${med[disco-t$t]} ${netmed[$peer]} ${netmed[disco-t$t]}" | awk '{printf "%.2f (net %.2f)", $1/$2, $3/$4}')"
    done
done
