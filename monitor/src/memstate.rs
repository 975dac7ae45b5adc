//! The state of a virtualized kernel's memory (docs/devirtualization.md,
//! "The state of a VM's memory"): which guest pages the monitor passes
//! through (the guest's own TLB entries installed as they are, after a
//! bound check) and which it composes through the pmap.
//!
//! A pass-through page is always on the machine page of its own number,
//! and stays there: nothing remaps it until `virtualize-memory` hands it
//! back to the pmap. [`virtualize_memory`] and [`devirtualize_memory`] are
//! the timeline's switches between the two for a range or all of it.

use sim::hv::{config::show_size, PAGE_SHIFT, PAGE_SIZE};

pub use crate::mem::{MemoryState, PageSet};
use crate::remap::RemapIndex;
use crate::virt::Switch;
use crate::Monitor;

/// The VM a timeline's memory switch acts on: the kernel virtualized at
/// run time.
const VM0: usize = 0;

/// Guest pages of VM0 named by the byte range `range` (all of its memory
/// when `None`), which must be whole 4K pages inside it.
fn pages_of(m: &Monitor, range: Option<(u64, u64)>) -> Result<(u32, u32), String> {
    let Some(vm) = m.vms.get(VM0).filter(|vm| vm.running()) else {
        return Err("vm0 has ended".to_string());
    };
    let size = vm.pmap.size();
    let (first, end) = range.unwrap_or((0, size));
    if first >= end || end > size || first % PAGE_SIZE != 0 || end % PAGE_SIZE != 0 {
        return Err(format!(
            "{first:#x}-{end:#x} is not a range of whole 4K pages inside vm0's {}",
            show_size(size)
        ));
    }
    // Below the VM's size, itself below 4G pages: exact.
    Ok(((first >> PAGE_SHIFT) as u32, (end >> PAGE_SHIFT) as u32))
}

/// Guest pages `g0..g1` as the byte range a log line names.
fn bytes((g0, g1): (u32, u32)) -> String {
    format!(
        "{:#x}-{:#x}",
        u64::from(g0) << PAGE_SHIFT,
        u64::from(g1) << PAGE_SHIFT
    )
}

/// Holds every CPU for `cycles` at the boundary, charged to VM0's VCPUs.
fn hold(m: &mut Monitor, cycles: u64) {
    for cpu in &mut m.machine.cpus {
        cpu.charge(cycles);
    }
    if let Some(vm) = m.vms.get_mut(VM0) {
        for vc in &mut vm.vcpus {
            vc.stats.monitor_cycles += cycles;
        }
    }
}

fn switch(m: &Monitor, (g0, g1): (u32, u32), pause: u64, log: Vec<String>) -> Switch {
    Switch {
        cpus: m.vms.get(VM0).map_or(0, |vm| vm.vcpus.len()),
        mem: u64::from(g1 - g0) << PAGE_SHIFT,
        pages_moved: 0,
        indirect: 0,
        memory: m.vms.get(VM0).map(|vm| vm.pmap.state()),
        pause,
        log,
    }
}

/// Commences memory virtualization for VM0's `range` (all of it when
/// `None`): its pages are composed through the pmap from now on, so the
/// monitor may move them. Nothing else changes at the switch: a page
/// passed through is on the machine page of its own number, which is what
/// composing it through the identity pmap gives, so the real TLBs and the
/// L2TLBs stay valid.
pub fn virtualize_memory(m: &mut Monitor, range: Option<(u64, u64)>) -> Result<Switch, String> {
    let (g0, g1) = pages_of(m, range)?;
    let pause = m.config.cost.virt.pmap_range;
    if let Some(vm) = m.vms.get_mut(VM0) {
        vm.pmap.passthrough.remove(g0, g1);
    }
    hold(m, pause);
    let state = m.vms.get(VM0).map(|vm| vm.pmap.state());
    let log = vec![format!(
        "pmap vm0: guest-physical {} composed from now on; memory {}; real TLBs and L2TLBs kept (composing the identity gives the same entries); guest paused {pause} cycles",
        bytes((g0, g1)),
        state.map_or_else(String::new, |s| s.to_string())
    )];
    Ok(switch(m, (g0, g1), pause, log))
}

/// Devirtualizes VM0's `range` (all of it when `None`) and no more: its
/// pages are remapped to the identity (`remap::range_to_identity`) and
/// passed through from now on; pages outside stay composed where they are.
/// The CPUs stay virtual.
pub fn devirtualize_memory(
    m: &mut Monitor,
    range: Option<(u64, u64)>,
    index: RemapIndex,
) -> Result<Switch, String> {
    let (g0, g1) = pages_of(m, range)?;
    let moved = crate::remap::range_to_identity(m, VM0, (g0, g1), index)?;
    let update = m.config.cost.virt.pmap_range;
    if let Some(vm) = m.vms.get_mut(VM0) {
        vm.pmap.passthrough.insert(g0, g1);
    }
    // The remapping charged its own pause.
    hold(m, update);
    let state = m.vms.get(VM0).map(|vm| vm.pmap.state());
    let pause = moved.pause + update;
    let log = vec![
        format!(
            "pmap vm0: guest-physical {} remapped to the identity: {} pages moved ({} direct, {} indirect), pause {} cycles",
            bytes((g0, g1)),
            moved.pages(),
            moved.direct,
            moved.indirect,
            moved.pause
        ),
        format!(
            "pmap vm0: guest-physical {} passed through from now on, the rest as it was; memory {}; guest paused {pause} cycles in all",
            bytes((g0, g1)),
            state.map_or_else(String::new, |s| s.to_string())
        ),
    ];
    let mut s = switch(m, (g0, g1), pause, log);
    s.pages_moved = moved.pages();
    s.indirect = moved.indirect;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_split_and_count() {
        let mut s = PageSet::of(0, 8192);
        s.remove(4096, 8192);
        assert_eq!(s.ranges(), &[(0, 4096)]);
        s.remove(100, 200);
        assert_eq!(s.ranges(), &[(0, 100), (200, 4096)]);
        assert!(s.contains(99) && !s.contains(100) && !s.contains(199) && s.contains(200));
        assert!(s.overlaps(150, 201) && !s.overlaps(100, 200));
        s.insert(50, 300);
        assert_eq!(s.ranges(), &[(0, 4096)]);
        s.insert(5000, 6000);
        s.insert(4096, 5000);
        assert_eq!(s.ranges(), &[(0, 6000)]);
        assert_eq!(s.pages(), 6000);
        s.insert(7, 7);
        assert_eq!(s.pages(), 6000);
    }

    #[test]
    fn the_state_names_how_much_passes_through() {
        assert_eq!(
            MemoryState::of(&PageSet::default(), 8192),
            MemoryState::Virtual
        );
        assert_eq!(
            MemoryState::of(&PageSet::of(0, 8192), 8192),
            MemoryState::PassThrough
        );
        let half = MemoryState::of(&PageSet::of(0, 4096), 8192);
        assert_eq!(
            half.to_string(),
            "partially virtual (4096 of 8192 pages pass-through)"
        );
    }
}
