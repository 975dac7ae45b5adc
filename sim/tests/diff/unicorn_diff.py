#!/usr/bin/env python3
"""Differential test: our R4000 simulator against Unicorn (QEMU's MIPS).

Generates seeded random MIPS32 integer programs whose behaviour is
architecturally defined (no trapping ADD/SUB, no misaligned accesses, no
branch in a delay slot, every branch forward to a block start), runs each on
Unicorn (UC_MODE_MIPS32 | UC_MODE_BIG_ENDIAN, CPU model 4Kc, a MIPS32 R1
core) and on our simulator (the `run_raw` example), and compares the 32
general registers, HI, LO and the scratch buffer. Unicorn's MIPS32
registers are 32 bits wide: we compare the low words and check that every
one of our 64-bit registers holds a sign-extended 32-bit value (§5.8).

Divide by zero and INT_MIN / -1 are included: both follow QEMU (LO =
dividend, HI = 0).

usage: unicorn_diff.py --run-raw PATH [--programs N] [--seed S] [--results FILE]
Exit status 0 if no divergence, 1 otherwise, 2 on a setup error.
"""

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

from unicorn import Uc, UcError, UC_ARCH_MIPS, UC_MODE_MIPS32, UC_MODE_BIG_ENDIAN
import unicorn.mips_const as mc

CODE = 0x0010_0000
DATA = 0x0020_0000
SCRATCH = 512
GP = 28   # holds DATA, never written by generated code
T9 = 25   # JALR target, loaded right before the jump

# --- encoders ------------------------------------------------------------------

def r_type(funct, rs=0, rt=0, rd=0, sa=0):
    return (rs << 21) | (rt << 16) | (rd << 11) | (sa << 6) | funct

def i_type(op, rs, rt, imm):
    return (op << 26) | (rs << 21) | (rt << 16) | (imm & 0xFFFF)

def regimm(rt_code, rs, imm):
    return (1 << 26) | (rs << 21) | (rt_code << 16) | (imm & 0xFFFF)

R3 = {"addu": 0x21, "subu": 0x23, "and": 0x24, "or": 0x25, "xor": 0x26,
      "nor": 0x27, "slt": 0x2A, "sltu": 0x2B}
SHIFT = {"sll": 0x00, "srl": 0x02, "sra": 0x03}
SHIFTV = {"sllv": 0x04, "srlv": 0x06, "srav": 0x07}
MULDIV = {"mult": 0x18, "multu": 0x19, "div": 0x1A, "divu": 0x1B}
IMM = {"addiu": 0x09, "slti": 0x0A, "sltiu": 0x0B, "andi": 0x0C, "ori": 0x0D, "xori": 0x0E}
LOADS = {"lb": (0x20, 1), "lh": (0x21, 2), "lw": (0x23, 4), "lbu": (0x24, 1),
         "lhu": (0x25, 2), "lwl": (0x22, 1), "lwr": (0x26, 1)}
STORES = {"sb": (0x28, 1), "sh": (0x29, 2), "sw": (0x2B, 4), "swl": (0x2A, 1), "swr": (0x2E, 1)}
BR2 = {"beq": 0x04, "bne": 0x05, "beql": 0x14, "bnel": 0x15}
BR1 = {"blez": 0x06, "bgtz": 0x07, "blezl": 0x16, "bgtzl": 0x17}
BRRI = {"bltz": 0x00, "bgez": 0x01, "bltzl": 0x02, "bgezl": 0x03, "bltzal": 0x10, "bgezal": 0x11}

EDGE = [0, 1, 2, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0xFFFF8000, 0x8000, 0x7FFF, 0xFFFF, 31, 32, 33]

class Gen:
    def __init__(self, rng):
        self.rng = rng

    def reg(self):
        """A source register (any)."""
        return self.rng.randrange(32)

    def dst(self):
        """A destination: anything but gp (r0 allowed: writes are discarded)."""
        while True:
            r = self.rng.randrange(32)
            if r != GP:
                return r

    def value(self):
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice(EDGE)
        if r < 0.5:
            return self.rng.randrange(-64, 64) & 0xFFFFFFFF
        return self.rng.getrandbits(32)

    def simple(self):
        """One non-control-flow instruction."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.25:
            return r_type(R3[rng.choice(list(R3))], self.reg(), self.reg(), self.dst())
        if kind < 0.35:
            return r_type(SHIFT[rng.choice(list(SHIFT))], 0, self.reg(), self.dst(), rng.randrange(32))
        if kind < 0.42:
            return r_type(SHIFTV[rng.choice(list(SHIFTV))], self.reg(), self.reg(), self.dst())
        if kind < 0.55:
            name = rng.choice(list(IMM))
            return i_type(IMM[name], self.reg(), self.dst(), rng.getrandbits(16))
        if kind < 0.58:
            return i_type(0x0F, 0, self.dst(), rng.getrandbits(16))  # lui
        if kind < 0.64:
            return r_type(MULDIV[rng.choice(list(MULDIV))], self.reg(), self.reg())
        if kind < 0.70:
            f = rng.choice([0x10, 0x12, 0x11, 0x13])  # mfhi, mflo, mthi, mtlo
            if f in (0x10, 0x12):
                return r_type(f, rd=self.dst())
            return r_type(f, rs=self.reg())
        if kind < 0.85:
            name = rng.choice(list(LOADS))
            op, align = LOADS[name]
            off = rng.randrange(0, SCRATCH - 3) & ~(align - 1)
            return i_type(op, GP, self.dst(), off)
        name = rng.choice(list(STORES))
        op, align = STORES[name]
        off = rng.randrange(0, SCRATCH - 3) & ~(align - 1)
        return i_type(op, GP, self.reg(), off)

    def program(self, nblocks):
        """Blocks of words; control flow only targets later block starts."""
        rng = self.rng
        blocks = []
        # Prelude: every register but r0 and gp gets a value; gp = DATA; HI/LO.
        pre = []
        for r in range(1, 32):
            v = DATA if r == GP else self.value()
            pre.append(i_type(0x0F, 0, r, v >> 16))
            pre.append(i_type(0x0D, r, r, v & 0xFFFF))
        pre.append(r_type(0x11, rs=self.reg()))
        pre.append(r_type(0x13, rs=self.reg()))
        blocks.append(("plain", pre))
        for _ in range(nblocks):
            k = rng.random()
            if k < 0.75:
                blocks.append(("plain", [self.simple()]))
            elif k < 0.92:
                blocks.append(("branch", None))
            elif k < 0.96:
                blocks.append(("jal", None))
            else:
                blocks.append(("jalr", None))
        # Addresses of block starts (the end address is a valid target too).
        sizes = {"plain": None, "branch": 2, "jal": 2, "jalr": 4}
        starts, addr = [], CODE
        for kind, words in blocks:
            starts.append(addr)
            addr += 4 * (len(words) if words is not None else sizes[kind])
        end = addr
        out = []
        for i, (kind, words) in enumerate(blocks):
            here = starts[i]
            if kind == "plain":
                out.extend(words)
                continue
            later = starts[i + 1:i + 12] + ([end] if i + 12 >= len(starts) else [])
            target = rng.choice(later)
            slot = self.simple()
            if kind == "branch":
                off = (target - (here + 4)) >> 2
                c = rng.random()
                if c < 0.4:
                    w = i_type(BR2[rng.choice(list(BR2))], self.reg(), self.reg(), off)
                elif c < 0.6:
                    w = i_type(BR1[rng.choice(list(BR1))], self.reg(), 0, off)
                else:
                    w = regimm(BRRI[rng.choice(list(BRRI))], self.reg(), off)
                out.extend([w, slot])
            elif kind == "jal":
                out.extend([(3 << 26) | ((target >> 2) & 0x03FFFFFF), slot])
            else:
                rd = rng.choice([31, 2, 3, 8, 9])
                out.extend([i_type(0x0F, 0, T9, target >> 16), i_type(0x0D, T9, T9, target & 0xFFFF),
                            r_type(0x09, rs=T9, rd=rd), slot])
        assert CODE + 4 * len(out) == end
        return out

# --- Unicorn side ----------------------------------------------------------------

def run_unicorn(words, data):
    mu = Uc(UC_ARCH_MIPS, UC_MODE_MIPS32 + UC_MODE_BIG_ENDIAN)
    try:
        mu.ctl_set_cpu_model(mc.UC_CPU_MIPS32_4KC)
    except Exception:  # older bindings: keep the default model
        pass
    mu.mem_map(CODE, 0x10000)
    mu.mem_map(DATA, 0x1000)
    code = b"".join(struct.pack(">I", w) for w in words)
    mu.mem_write(CODE, code)
    mu.mem_write(DATA, bytes(data))
    err = None
    try:
        mu.emu_start(CODE, CODE + len(code), timeout=2_000_000)
    except UcError as e:
        err = str(e)
    regs = [mu.reg_read(getattr(mc, f"UC_MIPS_REG_{i}")) & 0xFFFFFFFF for i in range(32)]
    return {
        "gpr": regs,
        "hi": mu.reg_read(mc.UC_MIPS_REG_HI) & 0xFFFFFFFF,
        "lo": mu.reg_read(mc.UC_MIPS_REG_LO) & 0xFFFFFFFF,
        "data": bytes(mu.mem_read(DATA, len(data))),
        "pc": mu.reg_read(mc.UC_MIPS_REG_PC) & 0xFFFFFFFF,
        "error": err,
    }

def sext32(v):
    v &= 0xFFFFFFFF
    return v | 0xFFFFFFFF00000000 if v & 0x80000000 else v

def compare(name, ours, theirs):
    """A list of human-readable differences (empty when they agree)."""
    diffs = []
    if theirs["error"]:
        diffs.append(f"unicorn stopped with {theirs['error']} at pc {theirs['pc']:#x}")
    if ours["exception"] is not None:
        diffs.append(f"ours raised {ours['exception']}")
    for i in range(32):
        v = int(ours["gpr"][i], 16)
        if v != sext32(v):
            diffs.append(f"r{i} = {v:#018x} is not sign-extended")
        if v & 0xFFFFFFFF != theirs["gpr"][i]:
            diffs.append(f"r{i}: ours {v & 0xFFFFFFFF:#010x} unicorn {theirs['gpr'][i]:#010x}")
    for r in ("hi", "lo"):
        v = int(ours[r], 16)
        if v != sext32(v):
            diffs.append(f"{r} = {v:#018x} is not sign-extended")
        if v & 0xFFFFFFFF != theirs[r]:
            diffs.append(f"{r}: ours {v & 0xFFFFFFFF:#010x} unicorn {theirs[r]:#010x}")
    if bytes.fromhex(ours["data"]) != theirs["data"]:
        a, b = bytes.fromhex(ours["data"]), theirs["data"]
        first = next(i for i in range(len(b)) if a[i] != b[i])
        diffs.append(f"scratch differs first at +{first:#x}: ours {a[first]:#04x} unicorn {b[first]:#04x}")
    return diffs

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-raw", required=True, help="path of the run_raw example binary")
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--blocks", type=int, default=120)
    ap.add_argument("--results", help="write a Markdown summary here")
    ap.add_argument("--keep", help="keep the generated programs in this directory")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    gen = Gen(rng)
    tmp = args.keep or tempfile.mkdtemp(prefix="unicorn_diff_")
    os.makedirs(tmp, exist_ok=True)
    programs = []
    insns = 0
    for n in range(args.programs):
        words = gen.program(args.blocks)
        data = [rng.getrandbits(8) for _ in range(SCRATCH)]
        name = f"p{n:05d}.bin"
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(struct.pack(">I", len(words)))
            f.write(b"".join(struct.pack(">I", w) for w in words))
            f.write(bytes(data))
        programs.append((name, words, data))
        insns += len(words)

    proc = subprocess.run([args.run_raw, "--dir", tmp], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 2
    ours = {}
    for line in proc.stdout.splitlines():
        j = json.loads(line)
        ours[j["file"]] = j

    divergent = []
    steps = 0
    for name, words, data in programs:
        mine = ours.get(name)
        if mine is None:
            divergent.append((name, ["no result from run_raw"]))
            continue
        steps += mine["steps"]
        d = compare(name, mine, run_unicorn(words, data))
        if d:
            divergent.append((name, d))

    print(f"unicorn_diff: seed {args.seed}: {len(programs)} programs, {insns} instruction words, "
          f"{steps} instructions executed by ours, {len(divergent)} divergent")
    for name, d in divergent[:20]:
        print(f"  {name}: " + "; ".join(d[:6]))
    if args.results:
        with open(args.results, "w") as f:
            f.write(summary(args, len(programs), insns, steps, divergent))
    return 1 if divergent else 0

def summary(args, programs, insns, steps, divergent):
    lines = [
        "# Differential test against Unicorn: results",
        "",
        "Written by `sim/tests/diff/unicorn_diff.py --results` (run by the",
        "`cpu_diff_unicorn` integration test). Reference: Unicorn 2 (QEMU-based),",
        "`UC_MODE_MIPS32 | UC_MODE_BIG_ENDIAN`, CPU model 4Kc.",
        "",
        "| seed | programs | instruction words | instructions executed (ours) | divergent programs |",
        "|---|---|---|---|---|",
        f"| {args.seed} | {programs} | {insns} | {steps} | {len(divergent)} |",
        "",
    ]
    if divergent:
        lines.append("## Divergences")
        lines.append("")
        for name, d in divergent:
            lines.append(f"* `{name}`: " + "; ".join(d))
        lines.append("")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
