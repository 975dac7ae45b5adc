#!/bin/sh
# fix-vaddr.sh ELF: set p_vaddr = 0x80000000|p_paddr for PT_LOAD segments linked above 0xC0000000.
set -eu
f=$1
rd() { od -An -tu1 -j "$1" -N "$2" "$f" | tr -s ' \n' ' '; }
be32() { set -- $(rd "$1" 4); echo $(( ($1<<24) | ($2<<16) | ($3<<8) | $4 )); }
phoff=$(be32 28)
set -- $(rd 44 2); phnum=$(( ($1<<8) | $2 ))
i=0
while [ $i -lt $phnum ]; do
  ph=$((phoff + i*32))
  type=$(be32 $ph); vaddr=$(be32 $((ph+8))); paddr=$(be32 $((ph+12)))
  if [ $type -eq 1 ] && [ $vaddr -ge $((0xC0000000)) ]; then
    v=$(( 0x80000000 | paddr ))
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((v>>24&255)) $((v>>16&255)) $((v>>8&255)) $((v&255)))" |
      dd of="$f" bs=1 seek=$((ph+8)) conv=notrunc status=none
  fi
  i=$((i+1))
done
