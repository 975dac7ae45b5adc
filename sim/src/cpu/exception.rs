//! Architectural exceptions: what the guest did that the hardware defines.

use std::fmt;

/// Cause.ExcCode values of the R4000 (`../shared/docs/r4000-reference.md` §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ExcCode {
    Int = 0,
    Mod = 1,
    TlbL = 2,
    TlbS = 3,
    AdEL = 4,
    AdES = 5,
    Ibe = 6,
    Dbe = 7,
    Sys = 8,
    Bp = 9,
    Ri = 10,
    CpU = 11,
    Ov = 12,
    Tr = 13,
    Vcei = 14,
    Fpe = 15,
    Watch = 23,
    Vced = 31,
}

impl ExcCode {
    pub const ALL: [ExcCode; 18] = [
        ExcCode::Int,
        ExcCode::Mod,
        ExcCode::TlbL,
        ExcCode::TlbS,
        ExcCode::AdEL,
        ExcCode::AdES,
        ExcCode::Ibe,
        ExcCode::Dbe,
        ExcCode::Sys,
        ExcCode::Bp,
        ExcCode::Ri,
        ExcCode::CpU,
        ExcCode::Ov,
        ExcCode::Tr,
        ExcCode::Vcei,
        ExcCode::Fpe,
        ExcCode::Watch,
        ExcCode::Vced,
    ];

    /// The manual's mnemonic.
    pub fn mnemonic(self) -> &'static str {
        match self {
            ExcCode::Int => "Int",
            ExcCode::Mod => "Mod",
            ExcCode::TlbL => "TLBL",
            ExcCode::TlbS => "TLBS",
            ExcCode::AdEL => "AdEL",
            ExcCode::AdES => "AdES",
            ExcCode::Ibe => "IBE",
            ExcCode::Dbe => "DBE",
            ExcCode::Sys => "Sys",
            ExcCode::Bp => "Bp",
            ExcCode::Ri => "RI",
            ExcCode::CpU => "CpU",
            ExcCode::Ov => "Ov",
            ExcCode::Tr => "Tr",
            ExcCode::Vcei => "VCEI",
            ExcCode::Fpe => "FPE",
            ExcCode::Watch => "WATCH",
            ExcCode::Vced => "VCED",
        }
    }
}

impl fmt::Display for ExcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

/// An exception raised by an instruction (or an interrupt), before entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub code: ExcCode,
    /// The faulting virtual address, for TLB and address-error exceptions.
    pub badvaddr: Option<u64>,
    /// Coprocessor number, for Coprocessor Unusable.
    pub ce: u8,
    /// A TLB miss (no matching entry), which uses the refill vector when EXL = 0.
    pub refill: bool,
    /// TLB exceptions also load Context and EntryHi.
    pub tlb: bool,
}

impl Exception {
    pub const fn new(code: ExcCode) -> Exception {
        Exception {
            code,
            badvaddr: None,
            ce: 0,
            refill: false,
            tlb: false,
        }
    }

    pub const fn address(code: ExcCode, vaddr: u64) -> Exception {
        Exception {
            code,
            badvaddr: Some(vaddr),
            ce: 0,
            refill: false,
            tlb: false,
        }
    }

    pub const fn tlb(code: ExcCode, vaddr: u64, refill: bool) -> Exception {
        Exception {
            code,
            badvaddr: Some(vaddr),
            ce: 0,
            refill,
            tlb: true,
        }
    }

    pub(crate) const fn cop_unusable(ce: u8) -> Exception {
        Exception {
            code: ExcCode::CpU,
            badvaddr: None,
            ce,
            refill: false,
            tlb: false,
        }
    }
}

/// Kind of memory access, which selects the exception code on a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Fetch,
    Load,
    Store,
}

impl Access {
    pub(crate) const fn address_error(self) -> ExcCode {
        match self {
            Access::Fetch | Access::Load => ExcCode::AdEL,
            Access::Store => ExcCode::AdES,
        }
    }

    pub(crate) const fn tlb_miss(self) -> ExcCode {
        match self {
            Access::Fetch | Access::Load => ExcCode::TlbL,
            Access::Store => ExcCode::TlbS,
        }
    }
}
