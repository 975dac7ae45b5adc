//! The cycle model: every cost in one table (documented in docs/timing.md).
//!
//! Units are PCycles (the R4000's pipeline clock; Count ticks every second
//! one). Figures come from `../shared/docs/r4000-reference.md` §6.2, which cites the manual,
//! GCC's R4000 scheduling model and course notes; where it says [U] the figure
//! is a modelling choice, marked so here too.

/// Cycle costs of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Every instruction issues in one PCycle (manual §3.1, peak issue rate).
    pub base: u64,
    /// A taken branch or jump loses two cycles besides its delay slot
    /// (manual §3.2: three-cycle branch delay).
    pub taken_branch: u64,
    /// A branch-likely that is not taken wastes its annulled slot (modelling choice).
    pub annulled_slot: u64,
    /// A load followed at once by a use of its result interlocks two cycles
    /// (manual: two-cycle load delay).
    pub load_use: u64,
    /// MULT/MULTU result latency (GCC `r4k_imul`).
    pub mult: u64,
    /// DIV/DIVU result latency (GCC `r4k_idiv`).
    pub div: u64,
    /// DMULT/DMULTU result latency (commonly quoted; \[U\]).
    pub dmult: u64,
    /// DDIV/DDIVU result latency (commonly quoted; \[U\]).
    pub ddiv: u64,
    /// Exception entry: the pipeline is flushed and refetched (≈7–8, \[U\]).
    pub exception: u64,
    /// ERET: like a taken jump without a delay slot (≈3, \[U\]).
    pub eret: u64,
    /// An uncached access to a device register (system-dependent; modelling choice).
    pub mmio: u64,
}

/// The model in force.
pub const TIMING: Timing = Timing {
    base: 1,
    taken_branch: 2,
    annulled_slot: 1,
    load_use: 2,
    mult: 10,
    div: 69,
    dmult: 20,
    ddiv: 133,
    exception: 8,
    eret: 3,
    mmio: 20,
};
