//! A remapping job: its plan, the batch being copied, and how a machine
//! page's user is found (`--remap-index`).

use sim::hv::{PAGE_SHIFT, PAGE_SIZE};

use super::{Moved, RemapIndex};
use crate::mem::COMMPAGE;
use crate::Monitor;

/// The chosen index over machine pages, and the simulated cycles its
/// questions have cost.
#[derive(Clone, Debug)]
pub(super) struct Users {
    pub(super) index: RemapIndex,
    pub(super) cost: u64,
}

impl Users {
    /// Searches the pmaps (a range answers at once; a page list entry by
    /// entry, each charged) and the commpages.
    fn search(&mut self, m: &Monitor, mpn: u32) -> Option<(usize, u32)> {
        for (v, vm) in m.vms.iter().enumerate() {
            if !m.memmap.holds(v) {
                continue;
            }
            if vm
                .vcpus
                .iter()
                .any(|vc| vc.commpage >> PAGE_SHIFT == u64::from(mpn))
            {
                return Some(COMMPAGE);
            }
            let (found, scanned) = vm.pmap.find(mpn);
            self.cost += scanned * m.config.cost.virt.search_entry;
            if let Some(gpn) = found {
                return Some((v, gpn));
            }
        }
        None
    }

    pub(super) fn user(&mut self, m: &Monitor, mpn: u32) -> Option<(usize, u32)> {
        match self.index {
            RemapIndex::Backmap => m.memmap.users(mpn).first().copied(),
            RemapIndex::Refcount if m.memmap.count(mpn) == 0 => None,
            _ => self.search(m, mpn),
        }
    }

    fn is_free(&mut self, m: &Monitor, mpn: u32) -> bool {
        (mpn as usize) < m.memmap.pages()
            && match self.index {
                RemapIndex::Backmap | RemapIndex::Refcount => m.memmap.count(mpn) == 0,
                RemapIndex::Search => self.search(m, mpn).is_none(),
            }
    }

    /// The first free machine page at or after `from` that no step of
    /// `batch` moves a page to.
    pub(super) fn free_from(&mut self, m: &Monitor, from: u32, batch: &[Step]) -> Option<u32> {
        let taken = |p: u32| batch.iter().any(|s| s.lands_on(p));
        if self.index == RemapIndex::Backmap {
            let mut p = from;
            loop {
                let f = m.memmap.free_from(p)?;
                if !taken(f) {
                    return Some(f);
                }
                p = f.checked_add(1)?;
            }
        }
        let pages = u32::try_from(m.memmap.pages()).unwrap_or(u32::MAX);
        (from..pages).find(|&p| !taken(p) && self.is_free(m, p))
    }
}

/// One page move of a batch (the VM is the job's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Guest page `gpn` from machine page `from` to `to`.
    Move {
        gpn: u32,
        from: u32,
        to: u32,
        indirect: bool,
    },
    /// Guest page `a` (on machine page `ma`) and `b` (on `mb`) trade places.
    Swap { a: u32, ma: u32, b: u32, mb: u32 },
}

impl Step {
    fn lands_on(&self, p: u32) -> bool {
        match *self {
            Step::Move { to, .. } => to == p,
            Step::Swap { ma, mb, .. } => ma == p || mb == p,
        }
    }

    /// The (guest page, machine page) pairs it copies from, in copy order.
    pub(super) fn sources(&self) -> impl Iterator<Item = (u32, u32)> {
        let (first, second) = match *self {
            Step::Move { gpn, from, .. } => ((gpn, from), None),
            Step::Swap { a, ma, b, mb } => ((a, ma), Some((b, mb))),
        };
        std::iter::once(first).chain(second)
    }
}

/// What is left to move.
#[derive(Clone, Debug)]
pub(super) enum Plan {
    /// `evacuate`: (guest page, machine page) pairs, from `next` on.
    Targets { pairs: Vec<(u32, u32)>, next: usize },
    /// To the identity: guest pages `next..pages`; an indirect move looks
    /// for a free page from `cursor` (above the identity region, where
    /// nothing will land).
    Identity { next: u32, pages: u32, cursor: u32 },
}

/// A remapping of one VM, started and not yet done.
#[derive(Clone, Debug)]
pub struct Job {
    pub(super) vm: usize,
    pub(super) plan: Plan,
    pub(super) users: Users,
    /// The batch being copied, and the bytes the copier read from its
    /// sources (a page per source, in [`Step::sources`] order).
    pub(super) batch: Vec<Step>,
    pub(super) bytes: Vec<u8>,
    /// When the copying CPU is done with the batch.
    pub(super) done_at: u64,
    /// Batches so far: the copying CPU goes round the CPUs.
    pub(super) batches: usize,
    pub(super) started: u64,
    /// Lookup cycles already charged.
    pub(super) charged: u64,
    pub(super) moved: Moved,
    pub(super) failed: Option<String>,
    pub(super) done: bool,
}

impl Job {
    pub(super) fn new(
        m: &Monitor,
        vm: usize,
        plan: Plan,
        index: RemapIndex,
        users_cost: u64,
    ) -> Job {
        Job {
            vm,
            plan,
            users: Users {
                index,
                cost: users_cost,
            },
            batch: Vec::new(),
            bytes: Vec::new(),
            done_at: 0,
            batches: 0,
            started: m.now(),
            charged: 0,
            moved: Moved::default(),
            failed: None,
            done: false,
        }
    }

    /// Whether the job has ended (moved everything, failed or was cut
    /// short by the VM's end).
    pub fn done(&self) -> bool {
        self.done
    }

    /// What it moved, or why it stopped.
    pub fn result(&self) -> Result<Moved, String> {
        match &self.failed {
            Some(why) => Err(why.clone()),
            None => Ok(self.moved),
        }
    }

    /// Fills the batch with at most `max` steps of the plan, taking no
    /// further step once the lookups not yet charged (this batch's, and
    /// any made up front) cost `lookups` cycles.
    pub(super) fn plan_batch(&mut self, m: &Monitor, max: usize, lookups: u64) {
        let Job {
            vm: v,
            plan,
            users,
            batch,
            failed,
            charged,
            ..
        } = self;
        let Some(vm) = m.vms.get(*v) else { return };
        let start = *charged;
        let room = |batch: &Vec<Step>, users: &Users| {
            batch.is_empty() || (batch.len() < max && users.cost.saturating_sub(start) < lookups)
        };
        match plan {
            Plan::Targets { pairs, next } => {
                while room(batch, users) {
                    let Some(&(gpn, t)) = pairs.get(*next) else {
                        break;
                    };
                    *next += 1;
                    let Some(from) = vm.pmap.machine_page(u64::from(gpn)) else {
                        continue;
                    };
                    batch.push(match users.user(m, t) {
                        Some((_, b)) => Step::Swap {
                            a: gpn,
                            ma: from,
                            b,
                            mb: t,
                        },
                        None => Step::Move {
                            gpn,
                            from,
                            to: t,
                            indirect: false,
                        },
                    });
                }
            }
            Plan::Identity {
                next,
                pages,
                cursor,
            } => {
                while room(batch, users) && *next < *pages {
                    let gpn = *next;
                    let here = vm.pmap.machine_page(u64::from(gpn));
                    let Some(here) = here.filter(|&h| h != gpn) else {
                        *next += 1;
                        continue;
                    };
                    // A page of this batch leaving the target frees it first.
                    let leaving = |g: u32| batch.iter().any(|s| s.sources().any(|(sg, _)| sg == g));
                    match users
                        .user(m, gpn)
                        .filter(|&(o, g)| !(o == *v && leaving(g)))
                    {
                        None => {
                            batch.push(Step::Move {
                                gpn,
                                from: here,
                                to: gpn,
                                indirect: false,
                            });
                            *next += 1;
                        }
                        Some((o, g2)) if o == *v => {
                            // Another of the VM's pages sits on the target:
                            // out of the way first; this one follows in the
                            // next batch, once that copy is done.
                            let Some(free) = users.free_from(m, *cursor, batch) else {
                                *failed =
                                    Some("no free machine page for an indirect move".to_string());
                                return;
                            };
                            *cursor = free + 1;
                            batch.push(Step::Move {
                                gpn: g2,
                                from: gpn,
                                to: free,
                                indirect: true,
                            });
                            break;
                        }
                        Some(_) => {
                            *failed = Some(format!(
                                "machine page {:#x}, which the identity needs, belongs to another VM or a commpage",
                                u64::from(gpn) << PAGE_SHIFT
                            ));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The copier reads the batch's source pages.
    pub(super) fn read_sources(&mut self, m: &Monitor) {
        self.bytes.clear();
        for (_, mpn) in self.batch.iter().flat_map(Step::sources) {
            let at = (u64::from(mpn) << PAGE_SHIFT) as usize;
            // Zeros for a page outside RAM.
            let from = self.bytes.len();
            self.bytes.resize(from + PAGE_SIZE as usize, 0);
            if let Some(page) = self.bytes.get_mut(from..) {
                m.machine.bus.copy_out(at as u64, page);
            }
        }
    }

    /// Writes what the copier read to the new machine pages and points
    /// the pmap and the memmap at them.
    pub(super) fn complete_batch(&mut self, m: &mut Monitor) {
        let v = self.vm;
        let page = PAGE_SIZE as usize;
        let mut at = 0;
        let mut put = |m: &mut Monitor, gpn: u32, from: u32, to: u32, bytes: &[u8]| {
            if let Some(b) = bytes.get(at..at + page) {
                // Stores re-decode any code the page held at its new address.
                m.machine.bus.write_bytes(u64::from(to) << PAGE_SHIFT, b);
            }
            at += page;
            if let Some(vm) = m.vms.get_mut(v) {
                vm.pmap.set(gpn, to);
            }
            m.memmap.remove(from, v, gpn);
        };
        for step in &self.batch {
            match *step {
                Step::Move {
                    gpn,
                    from,
                    to,
                    indirect,
                } => {
                    put(m, gpn, from, to, &self.bytes);
                    m.memmap.add(to, v, gpn);
                    if indirect {
                        self.moved.indirect += 1;
                    } else {
                        self.moved.direct += 1;
                    }
                }
                Step::Swap { a, ma, b, mb } => {
                    put(m, a, ma, mb, &self.bytes);
                    put(m, b, mb, ma, &self.bytes);
                    m.memmap.add(mb, v, a);
                    m.memmap.add(ma, v, b);
                    self.moved.direct += 2;
                }
            }
        }
        self.batch.clear();
    }
}
