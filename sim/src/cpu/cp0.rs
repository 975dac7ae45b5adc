//! CP0 register file: numbers, field layouts, write masks and reset values
//! (`r4000-reference.md` §2). Count and Random are derived from the CPU's
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

/// R4000 revision 2.2, a real part (`r4000-reference.md` §0).
pub const PRID_R4000: u32 = 0x0000_0422;
/// R4000PC, big-endian, 8 KB + 8 KB primary caches with 16-byte lines,
/// kseg0 cacheable noncoherent (§2.2, Config).
pub const CONFIG_RESET: u32 = 0x0002_8243;

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
