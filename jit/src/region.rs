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
    /// `MAX_MEMBERS` blocks, compiles that loop and makes it what a run
    /// of `head` (or a link to it) enters; if `head` is in a loop already,
    /// compiles that one again if links were made between its members
    /// since (`relink`). False: no such loop or no new link, `head`
    /// is in a loop on its way, a stale handle, or the compiler refused it.
    pub fn close_loop(&mut self, head: Code) -> bool {
        if head.epoch != self.epoch {
            return false;
        }
        let h = head.index as usize;
        // A link made after a loop of `h` was compiled may join two of its
        // members: compiled as it stood, each pass would leave the loop
        // there (which loop shape runs would depend on when the compiler
        // thread answered).
        if let Some(x) = self
            .loops
            .iter()
            .position(|m| m.as_ref().is_some_and(|m| m.contains(&head.index)))
        {
            return self.relink(x);
        }
        if !matches!(self.loops.get(h), Some(None)) {
            return false;
        }
        // A member of another loop reaches it through one chained call
        // (links lead into loops): one compile per loop, not per member.
        // Also while that loop is on its way: its installation would refuse
        // this one, whose compile would only have taken the compiler
        // thread's time (a second core's, on a shared host) while the CPU
        // waits for the first; once installed, it is compiled again if
        // links it has not seen join its members (`relink`).
        let member = |m: &[u32]| m.contains(&head.index);
        if self.loops.iter().flatten().any(|m| member(m))
            || self.pending_loops.iter().any(|l| member(&l.2))
        {
            return false;
        }
        let mut path = vec![h];
        if !self.search(&mut path, h) {
            return false;
        }
        let path: Box<[u32]> = path.iter().map(|&m| m as u32).collect();
        if let Some(seen) = self.seen.get_mut(h) {
            seen.clear();
        }
        self.submit_loop(h, path)
    }

    /// Compiles the loop `x` heads again if a link between two of its
    /// members is one none of its compiles has seen: each such link
    /// causes one compile at most, so the compiles of a loop are bounded
    /// by its members' exits. False: no new link, or not compiled.
    fn relink(&mut self, x: usize) -> bool {
        let Some(Some(path)) = self.loops.get(x).cloned() else {
            return false;
        };
        let Some(seen) = self.seen.get(x) else {
            return false;
        };
        if self.edges(&path).iter().all(|e| seen.contains(e)) {
            return false;
        }
        self.submit_loop(x, path)
    }

    /// The links between the members of `path`: (from, exit, to), blocks
    /// by index.
    fn edges(&self, path: &[u32]) -> Vec<(u32, u32, u32)> {
        let mut out = Vec::new();
        for &m in path {
            let Some(cells) = self.links.get(m as usize) else {
                continue;
            };
            for (k, c) in cells.iter().enumerate() {
                if c.func != 0 && path.contains(&c.to) {
                    out.push((m, k as u32, c.to));
                }
            }
        }
        out
    }

    /// Sends the loop of `path` (headed by `h`) to be compiled with the
    /// links between its members as they are now, which `h`'s loop then
    /// counts as seen. False: refused.
    fn submit_loop(&mut self, h: usize, path: Box<[u32]>) -> bool {
        // At most one loop per block, and as many compiles again, until
        // the next reset bounds the code.
        let fresh = self.loops.get(h).is_some_and(Option::is_none);
        let (again, limit) = match fresh {
            true => (0, self.funcs.len()),
            false => (self.relinked, 2 * self.funcs.len()),
        };
        if self.loops_compiled + again + self.pending_loops.len() >= limit {
            return false;
        }
        let mut members = Vec::with_capacity(path.len());
        for &m in &path {
            let m = m as usize;
            let (Some(block), Some(cells)) = (self.blocks.get(m), self.links.get(m)) else {
                return false;
            };
            // Every link between two members is a jump: its cell says
            // where the exit went, the successor's worst case and its
            // stall, all fixed for the pair.
            let edges = cells.iter().enumerate().filter(|(_, c)| c.func != 0);
            let edges = edges.filter_map(|(k, c)| {
                let to = path.iter().position(|&x| x == c.to)?;
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
        let new = self.edges(&path);
        if let Some(seen) = self.seen.get_mut(h) {
            for e in new {
                if !seen.contains(&e) {
                    seen.push(e);
                }
            }
        }
        let id = self.next_loop;
        self.next_loop += 1;
        let job = Job {
            members,
            what: What::Loop(id),
        };
        match self.submit(job) {
            Ok(Some(f)) => self.install_loop(h, f, path),
            Ok(None) => {
                self.pending_loops.push((id, h as u32, path));
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
        // The same loop compiled again (`relink`) replaces the one it heads.
        let again = self
            .loops
            .get(h)
            .is_some_and(|l| l.as_ref() == Some(&members));
        let member = |m: &Option<Box<[u32]>>| m.as_ref().is_some_and(|m| m.contains(&head));
        if !again && self.loops.iter().any(member) {
            return false;
        }
        let (Some(entry), Some(&Some(own))) = (self.entry.get_mut(h), self.funcs.get(h)) else {
            return false;
        };
        // Links made to the block (or its loop) before now lead into it.
        let old = if again { *entry } else { Some(own) };
        *entry = Some(f);
        if again {
            self.relinked += 1;
        } else {
            self.loops_compiled += 1;
        }
        self.installed += 1;
        let old = old.map_or(0, |o| o as usize);
        for c in self.links.iter_mut().flat_map(|c| c.iter_mut()) {
            if c.func == old {
                c.func = f as usize;
            }
        }
        if let Some(l) = self.loops.get_mut(h) {
            *l = Some(members);
        }
        // Links made while it was compiled.
        self.relink(h);
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
