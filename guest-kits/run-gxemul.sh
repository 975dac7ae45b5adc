#!/bin/sh
# run-gxemul.sh IMAGE - run one kit image on GXemul's testmips machine
# with the flags it needs, print its console output (GXemul's banner
# suppressed with -q). Used to produce the outputs in README.md.
#
#   guest-kits/run-gxemul.sh guest-kits/images/hello.elf
#
# GXemul hangs when its stdin is /dev/null or a closed pipe, so stdin is a
# FIFO held open by a `sleep` that we stop as soon as GXemul exits;
# `timeout` bounds the run (GXEMUL_TIMEOUT seconds, default 30).
# GXemul's exit status is 0 whatever the program writes to the halt
# register: judge a run by its output (a passing program's last line ends
# in "ok" or "halting with 0"; a failing one prints "FAIL: ...").
set -eu
img=$1
limit=${GXEMUL_TIMEOUT:-30}
flags="-q -E testmips -C R4000"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
case $(basename "$img") in
mp.elf | smp.elf) flags="$flags -n 4" ;;
disk.elf)
	# The program writes a sector (and restores it): give it a copy.
	cp "$(dirname "$img")/disk.img" "$dir/disk.img"
	flags="$flags -d $dir/disk.img"
	;;
esac
mkfifo "$dir/stdin"
sleep "$limit" >"$dir/stdin" &
sleeper=$!
status=0
# shellcheck disable=SC2086 # $flags is a word list on purpose
timeout "$limit" gxemul $flags "$img" <"$dir/stdin" || status=$?
kill "$sleeper" 2>/dev/null || true
exit "$status"
