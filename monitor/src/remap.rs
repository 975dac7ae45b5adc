//! Changing a VM's mapping while it is virtual: `evacuate` moves guest
//! pages to other machine pages, and devirtualization moves them back
//! until physical → machine is the identity (docs/devirtualization.md).
//!
//! Remapping is `paused`: every VCPU is held at the quantum boundary while
//! pages move, and the pause is charged to every CPU. The back map (which
//! VM page a machine page holds) is built from the pmaps for each
//! operation; the live `Memmap` and the other two indexes of the issue
//! (reference counts, pmap search) are not built yet.

use sim::mem::{PAGE_SHIFT, PAGE_SIZE};

use crate::cost::VIRT;
use crate::{tlbctl, Monitor};

/// What a remapping did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Pages copied straight to their new machine page.
    pub direct: u64,
    /// Pages first moved out of the way, through a free page, because the
    /// target held another of the VM's pages.
    pub indirect: u64,
    /// Cycles every CPU was held.
    pub pause: u64,
}

impl Moved {
    pub fn pages(&self) -> u64 {
        self.direct + self.indirect
    }
}

/// Per machine page: `Some((vm, guest page))` for a VM's page, `Some((usize::MAX,
/// 0))` for a commpage, `None` when free.
fn back_map(m: &Monitor) -> Vec<Option<(usize, u32)>> {
    let pages = (m.machine.bus.ram().len() as u64 >> PAGE_SHIFT) as usize;
    let mut owner = vec![None; pages];
    for (v, vm) in m.vms.iter().enumerate() {
        for gpn in 0..(vm.pmap.size() >> PAGE_SHIFT) {
            if let Some(slot) = vm
                .pmap
                .machine_page(gpn)
                .and_then(|mpn| owner.get_mut(mpn as usize))
            {
                *slot = Some((v, gpn as u32));
            }
        }
        for vc in &vm.vcpus {
            if let Some(slot) = owner.get_mut((vc.commpage >> PAGE_SHIFT) as usize) {
                *slot = Some((usize::MAX, 0));
            }
        }
    }
    owner
}

fn copy_page(m: &mut Monitor, from: u32, to: u32) {
    let (src, dst) = (u64::from(from) << PAGE_SHIFT, u64::from(to) << PAGE_SHIFT);
    let bytes = m
        .machine
        .bus
        .ram()
        .get(src as usize..(src + PAGE_SIZE) as usize)
        .map(<[u8]>::to_vec);
    if let Some(bytes) = bytes {
        // Stores re-decode any code the page held at its new address.
        m.machine.bus.write_bytes(dst, &bytes);
    }
}

/// Moves guest page `gpn` of VM `v` to machine page `to`, keeping `owner`.
fn move_page(m: &mut Monitor, owner: &mut [Option<(usize, u32)>], v: usize, gpn: u32, to: u32) {
    let Some(from) = m
        .vms
        .get(v)
        .and_then(|vm| vm.pmap.machine_page(u64::from(gpn)))
    else {
        return;
    };
    copy_page(m, from, to);
    if let Some(vm) = m.vms.get_mut(v) {
        vm.pmap.set(gpn, to);
    }
    if let Some(o) = owner.get_mut(from as usize) {
        *o = None;
    }
    if let Some(o) = owner.get_mut(to as usize) {
        *o = Some((v, gpn));
    }
}

/// Drops every composed translation of VM `v`, in the real TLBs and its
/// L2TLBs, and charges `pause` to every CPU: the mapping changed.
fn finish(m: &mut Monitor, v: usize, moved: &mut Moved) {
    let tlb = sim::cpu::TLB_ENTRIES as u64;
    moved.pause = moved.pages() * (VIRT.page_copy + VIRT.page_remap) + tlb * VIRT.tlb_flush_entry;
    for cpu in &mut m.machine.cpus {
        tlbctl::flush_real_tlb(cpu);
        cpu.charge(moved.pause);
    }
    if let Some(vm) = m.vms.get_mut(v) {
        for vc in &mut vm.vcpus {
            vc.l2tlb.clear();
            vc.stats.monitor_cycles += moved.pause;
        }
    }
}

/// Moves VM `v`'s guest pages `first..end` (byte addresses) to other
/// machine pages: to `to..` if given (a page of the same VM found there
/// trades places with the one moving in), else to the lowest free ones.
pub fn evacuate(
    m: &mut Monitor,
    v: usize,
    (first, end): (u64, u64),
    to: Option<u64>,
) -> Result<Moved, String> {
    let size = m.vms.get(v).map_or(0, |vm| vm.pmap.size());
    let name = m.vms.get(v).map_or(String::new(), |vm| vm.name.clone());
    if first >= end || end > size || first % PAGE_SIZE != 0 || end % PAGE_SIZE != 0 {
        return Err(format!(
            "{first:#x}-{end:#x} is not a range of whole 4K pages inside {name}'s {size:#x} bytes"
        ));
    }
    let mut owner = back_map(m);
    let (g0, g1) = ((first >> PAGE_SHIFT) as u32, (end >> PAGE_SHIFT) as u32);
    let count = (g1 - g0) as usize;
    let targets: Vec<u32> = match to {
        Some(at) => {
            let t0 = (at >> PAGE_SHIFT) as u32;
            let targets: Vec<u32> = (t0..t0 + count as u32).collect();
            for &t in &targets {
                match owner.get(t as usize) {
                    None => return Err(format!("machine {at:#x} + {:#x} lies outside machine memory", end - first)),
                    Some(Some((o, g))) if *o != v || (g0..g1).contains(g) => {
                        return Err(format!(
                            "machine page {:#x} holds a page that cannot trade places (another VM's, a commpage, or one of the range)",
                            u64::from(t) << PAGE_SHIFT
                        ))
                    }
                    _ => {}
                }
            }
            targets
        }
        None => owner
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_none())
            .map(|(p, _)| p as u32)
            .take(count)
            .collect(),
    };
    if targets.len() < count {
        return Err(format!(
            "{count} free machine pages needed, {} free",
            targets.len()
        ));
    }
    let mut moved = Moved::default();
    for (gpn, &t) in (g0..g1).zip(&targets) {
        let from = m
            .vms
            .get(v)
            .and_then(|vm| vm.pmap.machine_page(u64::from(gpn)));
        let Some(from) = from else { continue };
        match owner.get(t as usize).copied().flatten() {
            // Trade places: the page there takes the one leaving.
            Some((_, g2)) => {
                let bytes_here = m
                    .machine
                    .bus
                    .ram()
                    .get(
                        (u64::from(t) << PAGE_SHIFT) as usize
                            ..((u64::from(t) + 1) << PAGE_SHIFT) as usize,
                    )
                    .map(<[u8]>::to_vec);
                move_page(m, &mut owner, v, gpn, t);
                if let Some(bytes) = bytes_here {
                    m.machine
                        .bus
                        .write_bytes(u64::from(from) << PAGE_SHIFT, &bytes);
                }
                if let Some(vm) = m.vms.get_mut(v) {
                    vm.pmap.set(g2, from);
                }
                if let Some(o) = owner.get_mut(from as usize) {
                    *o = Some((v, g2));
                }
                moved.direct += 2;
            }
            None => {
                move_page(m, &mut owner, v, gpn, t);
                moved.direct += 1;
            }
        }
    }
    finish(m, v, &mut moved);
    Ok(moved)
}

/// Remaps VM `v` until its pmap is the identity: a page whose target
/// machine page is free moves there directly; a page whose target holds
/// another of the VM's pages waits until that one has moved out through a
/// free page (indirect). Refused when a target belongs to another VM or a
/// commpage, or when no free page exists for an indirect move.
pub fn to_identity(m: &mut Monitor, v: usize) -> Result<Moved, String> {
    let Some(vm) = m.vms.get(v) else {
        return Err("no such VM".to_string());
    };
    let pages = (vm.pmap.size() >> PAGE_SHIFT) as u32;
    let mut owner = back_map(m);
    if owner.len() < pages as usize {
        return Err(format!(
            "{}'s memory is larger than machine memory",
            vm.name
        ));
    }
    let outside = (0..u64::from(pages)).any(|g| {
        vm.pmap
            .machine_page(g)
            .is_none_or(|mpn| mpn as usize >= owner.len())
    });
    if outside {
        return Err(format!(
            "{}'s pmap maps pages outside machine memory",
            vm.name
        ));
    }
    if let Some(p) =
        (0..pages).find(|&p| matches!(owner.get(p as usize), Some(Some((o, _))) if *o != v))
    {
        return Err(format!(
            "machine page {:#x}, which the identity needs, belongs to another VM or a commpage",
            u64::from(p) << PAGE_SHIFT
        ));
    }
    let mut moved = Moved::default();
    for gpn in 0..pages {
        let here = m
            .vms
            .get(v)
            .and_then(|vm| vm.pmap.machine_page(u64::from(gpn)));
        if here == Some(gpn) {
            continue;
        }
        if let Some(Some((_, g2))) = owner.get(gpn as usize).copied() {
            // Another of the VM's pages sits on the target: out of the way first.
            // Above the identity region first, where nothing will land.
            let free = owner
                .iter()
                .skip(pages as usize)
                .position(Option::is_none)
                .map(|p| p + pages as usize)
                .or_else(|| owner.iter().position(Option::is_none));
            let Some(free) = free else {
                return Err("no free machine page for an indirect move".to_string());
            };
            move_page(m, &mut owner, v, g2, free as u32);
            moved.indirect += 1;
        }
        move_page(m, &mut owner, v, gpn, gpn);
        moved.direct += 1;
    }
    if let Some(vm) = m.vms.get_mut(v) {
        vm.pmap.compact();
    }
    if moved.pages() > 0 {
        finish(m, v, &mut moved);
    }
    Ok(moved)
}
