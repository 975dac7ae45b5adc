//! Loops: blocks linked into a cycle ([`Jit::link`]) compiled again as one
//! function, in which each link between two of them is a jump instead of
//! a chained call. The guest registers, HI/LO and the tables' fields then
//! stay in host registers from one pass to the next, and nothing is
//! written back or reloaded but at the loop's exits. Each jump checks what
//! the chained call checks (`lower::chain`): the target address, no store
//! through the callout, the page's generation, the successor's worst case
//! before the next event; the passes of one run are bounded
//! ([`MAX_PASSES`]) so that the dispatch still runs now and then.

use crate::compiler::{Job, What};
use crate::lower::Edge;
use crate::{BlockFn, Code, Jit};

/// Blocks in one loop at most.
pub(crate) const MAX_MEMBERS: usize = 4;

/// Jumps between the members of a loop in one run at most; the run then
/// returns to the caller's dispatch (which would go on with the same
/// block: this only bounds the time spent without looking at the world).
pub(crate) const MAX_PASSES: u32 = 4096;

impl Jit {
    /// If the links lead from block `head` back to it through at most
    /// [`MAX_MEMBERS`] blocks, compiles that loop and makes it what a run
    /// of `head` (or a link to it) enters. False: no such loop, `head` is
    /// in one already, a stale handle, or the compiler refused it.
    pub fn close_loop(&mut self, head: Code) -> bool {
        if head.epoch != self.epoch {
            return false;
        }
        let h = head.index as usize;
        if !matches!(self.loops.get(h), Some(None)) {
            return false;
        }
        // One on its way already.
        if self.pending_loops.iter().any(|l| l.1 == head.index) {
            return false;
        }
        // A member of another loop reaches it through one chained call
        // (links lead into loops): one compile per loop, not per member.
        let member = |m: &Option<Box<[u32]>>| m.as_ref().is_some_and(|m| m.contains(&head.index));
        if self.loops.iter().any(member) {
            return false;
        }
        let mut path = vec![h];
        if !self.search(&mut path, h) {
            return false;
        }
        // At most one loop per block until the next reset bounds the code.
        if self.loops_compiled + self.pending_loops.len() >= self.funcs.len() {
            return false;
        }
        let mut members = Vec::with_capacity(path.len());
        for &m in &path {
            let (Some(block), Some(cells)) = (self.blocks.get(m), self.links.get(m)) else {
                return false;
            };
            // Every link between two members is a jump: its cell says
            // where the exit went, the successor's worst case and its
            // stall, all fixed for the pair.
            let edges = cells.iter().enumerate().filter(|(_, c)| c.func != 0);
            let edges = edges.filter_map(|(k, c)| {
                let to = path.iter().position(|&x| x == c.to as usize)?;
                Some(Edge {
                    done: k + 1,
                    to,
                    max_cost: c.max_cost,
                    stall: c.stall,
                })
            });
            let links = cells.as_ptr() as usize as i64;
            members.push((block.clone(), links, edges.collect()));
        }
        let id = self.next_loop;
        self.next_loop += 1;
        let path: Box<[u32]> = path.iter().map(|&m| m as u32).collect();
        let job = Job {
            members,
            what: What::Loop(id),
        };
        match self.submit(job) {
            Ok(Some(f)) => self.install_loop(h, f, path),
            Ok(None) => {
                self.pending_loops.push((id, head.index, path));
                true
            }
            Err(_) => false,
        }
    }

    /// Makes `f`, compiled from the loop of `members` that `h` heads, what
    /// a run of `h` (or a link to it) enters, unless `h` has come to head
    /// or be in a loop since it was asked for. False: it was not.
    pub(crate) fn install_loop(&mut self, h: usize, f: BlockFn, members: Box<[u32]>) -> bool {
        let head = h as u32;
        let member = |m: &Option<Box<[u32]>>| m.as_ref().is_some_and(|m| m.contains(&head));
        if self.loops.iter().any(member) {
            return false;
        }
        let (Some(entry), Some(&Some(own))) = (self.entry.get_mut(h), self.funcs.get(h)) else {
            return false;
        };
        *entry = Some(f);
        self.loops_compiled += 1;
        self.installed += 1;
        // Links made to the block before now lead into its loop.
        let own = own as usize;
        for c in self.links.iter_mut().flat_map(|c| c.iter_mut()) {
            if c.func == own {
                c.func = f as usize;
            }
        }
        if let Some(l) = self.loops.get_mut(h) {
            *l = Some(members);
        }
        true
    }

    /// Extends `path` (blocks linked one to the next, from `head`) until
    /// its last block links back to `head`; false if it cannot.
    fn search(&self, path: &mut Vec<usize>, head: usize) -> bool {
        let Some(&last) = path.last() else {
            return false;
        };
        let Some(cells) = self.links.get(last) else {
            return false;
        };
        for c in cells.iter().filter(|c| c.func != 0) {
            let to = c.to as usize;
            if to == head {
                return true;
            }
            if path.len() < MAX_MEMBERS && !path.contains(&to) {
                path.push(to);
                if self.search(path, head) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
}
