//! CP0 register file: numbers, field layouts, write masks and reset values
//! (`../shared/docs/r4000-reference.md` §2). Count and Random are derived from the CPU's
//! cycle and instruction counters, so `Cpu` reads them, not this file.

/// CP0 register numbers.
pub mod reg {
    pub const INDEX: u32 = 0;
    pub const RANDOM: u32 = 1;
    pub const ENTRY_LO0: u32 = 2;
    pub const ENTRY_LO1: u32 = 3;
    pub const CONTEXT: u32 = 4;
    pub const PAGE_MASK: u32 = 5;
    pub const WIRED: u32 = 6;
    pub const BAD_VADDR: u32 = 8;
    pub const COUNT: u32 = 9;
    pub const ENTRY_HI: u32 = 10;
    pub const COMPARE: u32 = 11;
    pub const STATUS: u32 = 12;
    pub const CAUSE: u32 = 13;
    pub const EPC: u32 = 14;
    pub const PRID: u32 = 15;
    pub const CONFIG: u32 = 16;
    pub const LL_ADDR: u32 = 17;
    pub const WATCH_LO: u32 = 18;
    pub const WATCH_HI: u32 = 19;
    pub const XCONTEXT: u32 = 20;
    pub const ECC: u32 = 26;
    pub const CACHE_ERR: u32 = 27;
    pub const TAG_LO: u32 = 28;
    pub const TAG_HI: u32 = 29;
    pub const ERROR_EPC: u32 = 30;

    /// The manual's register names, by number ("" for reserved numbers).
    pub const NAMES: [&str; 32] = [
        "Index", "Random", "EntryLo0", "EntryLo1", "Context", "PageMask", "Wired", "", "BadVAddr",
        "Count", "EntryHi", "Compare", "Status", "Cause", "EPC", "PRId", "Config", "LLAddr",
        "WatchLo", "WatchHi", "XContext", "", "", "", "", "", "ECC", "CacheErr", "TagLo", "TagHi",
        "ErrorEPC", "",
    ];
}

/// Status register fields.
pub mod status {
    pub const IE: u32 = 1 << 0;
    pub const EXL: u32 = 1 << 1;
    pub const ERL: u32 = 1 << 2;
    pub const KSU_SHIFT: u32 = 3;
    pub const KSU_MASK: u32 = 3 << 3;
    pub const UX: u32 = 1 << 5;
    pub const SX: u32 = 1 << 6;
    pub const KX: u32 = 1 << 7;
    pub const IM_SHIFT: u32 = 8;
    pub const IM_MASK: u32 = 0xFF << 8;
    pub const TS: u32 = 1 << 21;
    pub const BEV: u32 = 1 << 22;
    pub const CU0: u32 = 1 << 28;
    /// Bits 24, 23, 21 (TS) and 19 are not writable (MAME's mask; the
    /// manual says TS is read-only).
    pub const WRITABLE: u32 = 0xFE57_FFFF;
}

/// Cause register fields.
pub mod cause {
    pub const EXC_SHIFT: u32 = 2;
    pub const EXC_MASK: u32 = 0x1F << 2;
    pub const IP_SHIFT: u32 = 8;
    pub const IP_MASK: u32 = 0xFF << 8;
    /// IP1:0, the only bits MTC0 may write.
    pub const SW_IP: u32 = 0x3 << 8;
    pub const IP7: u32 = 1 << 15;
    pub const CE_SHIFT: u32 = 28;
    pub const CE_MASK: u32 = 3 << 28;
    pub const BD: u32 = 1 << 31;
}

/// Processor mode from Status.KSU/EXL/ERL (§1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Kernel,
    Supervisor,
    User,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Kernel => "kernel",
            Mode::Supervisor => "supervisor",
            Mode::User => "user",
        }
    }
}

/// R4000 revision 2.2, a real part (`../shared/docs/r4000-reference.md` §0).
pub(crate) const PRID_R4000: u32 = 0x0000_0422;
/// R4000PC, big-endian, 8 KB + 8 KB primary caches with 16-byte lines,
/// kseg0 cacheable noncoherent (§2.2, Config).
pub(crate) const CONFIG_RESET: u32 = 0x0002_8243;

/// The CP0 registers that are plain storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cp0 {
    pub index: u32,
    pub entry_lo0: u32,
    pub entry_lo1: u32,
    pub context: u64,
    pub page_mask: u32,
    pub wired: u32,
    pub bad_vaddr: u64,
    pub entry_hi: u64,
    pub compare: u32,
    pub status: u32,
    pub cause: u32,
    pub epc: u64,
    pub config: u32,
    pub ll_addr: u32,
    pub watch_lo: u32,
    pub watch_hi: u32,
    pub xcontext: u64,
    pub ecc: u32,
    pub cache_err: u32,
    pub tag_lo: u32,
    pub tag_hi: u32,
    pub error_epc: u64,
}

impl Default for Cp0 {
    fn default() -> Self {
        Cp0 {
            index: 0,
            entry_lo0: 0,
            entry_lo1: 0,
            context: 0,
            page_mask: 0,
            wired: 0,
            bad_vaddr: 0,
            entry_hi: 0,
            compare: 0,
            // Cold reset: BEV = 1, ERL = 1 (§2.1).
            status: status::BEV | status::ERL,
            cause: 0,
            epc: 0,
            config: CONFIG_RESET,
            ll_addr: 0,
            watch_lo: 0,
            watch_hi: 0,
            xcontext: 0,
            ecc: 0,
            cache_err: 0,
            tag_lo: 0,
            tag_hi: 0,
            error_epc: 0,
        }
    }
}

/// Sign-extends the low word, as every 32-bit value in a 64-bit register is.
#[inline(always)]
pub const fn sext32(x: u64) -> u64 {
    x as u32 as i32 as i64 as u64
}

impl Cp0 {
    #[inline(always)]
    pub fn mode(&self) -> Mode {
        let s = self.status;
        if s & (status::EXL | status::ERL) != 0 {
            return Mode::Kernel;
        }
        match (s & status::KSU_MASK) >> status::KSU_SHIFT {
            0 => Mode::Kernel,
            1 => Mode::Supervisor,
            // KSU = 11 is undefined; treated as user (§1.1).
            _ => Mode::User,
        }
    }

    /// The current ASID (EntryHi 7:0).
    #[inline(always)]
    pub fn asid(&self) -> u8 {
        // Low byte.
        self.entry_hi as u8
    }

    pub fn exl(&self) -> bool {
        self.status & status::EXL != 0
    }

    pub fn erl(&self) -> bool {
        self.status & status::ERL != 0
    }

    pub fn bev(&self) -> bool {
        self.status & status::BEV != 0
    }

    /// Coprocessor `n` usable: CU bit set, or CP0 in kernel mode (§5.6).
    pub fn cop_usable(&self, n: u8) -> bool {
        if n == 0 && self.mode() == Mode::Kernel {
            return true;
        }
        self.status & (status::CU0 << n) != 0
    }

    /// 64-bit operations are legal in kernel mode, and in supervisor or user
    /// mode only with SX or UX set (§1.2).
    pub fn allow64(&self) -> bool {
        match self.mode() {
            Mode::Kernel => true,
            Mode::Supervisor => self.status & status::SX != 0,
            Mode::User => self.status & status::UX != 0,
        }
    }

    /// The interrupts that are pending and enabled, if the CPU takes
    /// interrupts at all right now (§4.8).
    pub fn pending_interrupts(&self) -> u32 {
        let s = self.status;
        if s & status::IE == 0 || s & (status::EXL | status::ERL) != 0 {
            return 0;
        }
        self.cause & s & cause::IP_MASK
    }
}

/// What a CP0 write changed besides the register itself, for the owner of
/// the derived state (the CPU's timers and translation caches, or a
/// monitor's virtual CPU) to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cp0Write {
    /// Nothing else.
    Plain,
    /// Count was written: the owner keeps Count, so this is the new value.
    Count(u32),
    /// Wired was written: Random restarts at 47.
    Wired,
    /// Compare was written (IP7 already cleared): reschedule the timer.
    Compare,
    /// EntryHi was written: the current ASID may have changed.
    Context,
    /// Status was written: mode, ASID context and interrupt enables.
    Status,
    /// Cause.IP1:0 was written.
    Interrupts,
    /// WatchLo/WatchHi were written.
    Watch,
}

impl Cp0 {
    /// The value MFC0/DMFC0 read (before MFC0's sign extension). Count and
    /// Random are derived by the owner and passed in.
    pub fn read(&self, reg: u32, count: u32, random: u32) -> u64 {
        use reg::*;
        match reg {
            INDEX => u64::from(self.index),
            RANDOM => u64::from(random),
            ENTRY_LO0 => u64::from(self.entry_lo0),
            ENTRY_LO1 => u64::from(self.entry_lo1),
            CONTEXT => self.context,
            PAGE_MASK => u64::from(self.page_mask),
            WIRED => u64::from(self.wired),
            BAD_VADDR => self.bad_vaddr,
            COUNT => u64::from(count),
            ENTRY_HI => self.entry_hi,
            COMPARE => u64::from(self.compare),
            STATUS => u64::from(self.status),
            CAUSE => u64::from(self.cause),
            EPC => self.epc,
            PRID => u64::from(PRID_R4000),
            CONFIG => u64::from(self.config),
            LL_ADDR => u64::from(self.ll_addr),
            WATCH_LO => u64::from(self.watch_lo),
            WATCH_HI => u64::from(self.watch_hi),
            XCONTEXT => self.xcontext,
            ECC => u64::from(self.ecc),
            CACHE_ERR => u64::from(self.cache_err),
            TAG_LO => u64::from(self.tag_lo),
            TAG_HI => u64::from(self.tag_hi),
            ERROR_EPC => self.error_epc,
            // Reserved numbers read 0 (`../shared/docs/r4000-reference.md` §2.1).
            _ => 0,
        }
    }

    /// MTC0/DMTC0 through the write masks of §2.2. `value` is the full
    /// register value (MTC0 passes it sign-extended).
    pub fn write(&mut self, reg: u32, value: u64) -> Cp0Write {
        use reg::*;
        // Registers below are 32 bits wide unless noted; the narrowing is the point.
        let v32 = value as u32;
        match reg {
            INDEX => self.index = (self.index & 0x8000_0000) | (v32 & 0x3F),
            ENTRY_LO0 => self.entry_lo0 = v32 & super::tlb::lo::WRITABLE,
            ENTRY_LO1 => self.entry_lo1 = v32 & super::tlb::lo::WRITABLE,
            // BadVPN2 (22:4) is written by hardware only, as QEMU and GXemul
            // treat it (§2.2 Context, [D]).
            CONTEXT => self.context = (value & !0x7F_FFFF) | (self.context & 0x7F_FFF0),
            PAGE_MASK => self.page_mask = v32 & 0x01FF_E000,
            WIRED => {
                self.wired = v32 & 0x3F;
                return Cp0Write::Wired;
            }
            COUNT => return Cp0Write::Count(v32),
            ENTRY_HI => {
                self.entry_hi = sext32(u64::from(v32 & 0xFFFF_E0FF));
                return Cp0Write::Context;
            }
            COMPARE => {
                self.compare = v32;
                self.cause &= !cause::IP7;
                return Cp0Write::Compare;
            }
            STATUS => {
                self.status = (self.status & !status::WRITABLE) | (v32 & status::WRITABLE);
                return Cp0Write::Status;
            }
            CAUSE => {
                self.cause = (self.cause & !cause::SW_IP) | (v32 & cause::SW_IP);
                return Cp0Write::Interrupts;
            }
            EPC => self.epc = value,
            CONFIG => self.config = (self.config & !0x3F) | (v32 & 0x3F),
            LL_ADDR => self.ll_addr = v32,
            WATCH_LO => {
                self.watch_lo = v32 & 0xFFFF_FFFB;
                return Cp0Write::Watch;
            }
            WATCH_HI => {
                self.watch_hi = v32 & 0xF;
                return Cp0Write::Watch;
            }
            XCONTEXT => {
                self.xcontext = (value & !0x1_FFFF_FFFF) | (self.xcontext & 0x1_FFFF_FFF0);
            }
            ECC => self.ecc = v32 & 0xFF,
            TAG_LO => self.tag_lo = v32,
            TAG_HI => self.tag_hi = v32,
            ERROR_EPC => self.error_epc = value,
            // Random, BadVAddr, PRId, CacheErr are read-only; reserved
            // numbers ignore writes.
            _ => {}
        }
        Cp0Write::Plain
    }

    /// The CP0 side of exception entry (`../shared/docs/r4000-reference.md` §4): EPC and
    /// Cause.BD unless EXL is already set, ExcCode and CE, BadVAddr, and for
    /// TLB exceptions Context, XContext and EntryHi; then EXL. `pc` is the
    /// address of the instruction that faulted (or was interrupted) and `bd`
    /// whether it sat in a delay slot. Returns the vector address.
    pub(crate) fn enter_exception(&mut self, e: &super::Exception, pc: u64, bd: bool) -> u64 {
        let exl = self.exl();
        if !exl {
            self.epc = if bd { pc.wrapping_sub(4) } else { pc };
            if bd {
                self.cause |= cause::BD;
            } else {
                self.cause &= !cause::BD;
            }
        }
        self.cause = (self.cause & !(cause::EXC_MASK | cause::CE_MASK))
            | ((e.code as u32) << cause::EXC_SHIFT)
            | (u32::from(e.ce & 3) << cause::CE_SHIFT);
        if let Some(va) = e.badvaddr {
            self.bad_vaddr = va;
            if e.tlb {
                // The VA's low word; 32-bit addressing.
                let va32 = va as u32;
                self.context = (self.context & !0x7F_FFF0) | u64::from((va32 >> 9) & 0x7F_FFF0);
                self.xcontext = (self.xcontext & !0x1_FFFF_FFF0) | ((va >> 9) & 0x7FFF_FFF0);
                self.entry_hi = sext32(u64::from(va32 & 0xFFFF_E000)) | u64::from(self.asid());
            }
        }
        self.status |= status::EXL;
        let base: u64 = if self.bev() {
            0xFFFF_FFFF_BFC0_0200
        } else {
            0xFFFF_FFFF_8000_0000
        };
        base + if e.refill && !exl { 0x000 } else { 0x180 }
    }
}
