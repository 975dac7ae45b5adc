//! The engine's data path (`engine`): what an interpreted load or store
//! of the guest reaches, RAM, a device, the commpage, LL/SC, for a context
//! that holds its VM's VM-wide parts and for one that runs outside a split
//! VM's lock (`guest::VmLock`), whose instructions are here too.

use sim::hv::{Access, Exception, ExecContext};

use crate::guest::{GuestCtx, VmLock, VmParts, Wide};
use crate::mem::GuestPhys;
use crate::obs::MonEvent;
use crate::vm::VmHeld;

// The device path and the commpage: with the VM-wide parts held.
impl GuestCtx<'_> {
    /// A guest-kernel load from the commpage: the page brought up to date
    /// first, so the engine reads what direct execution would.
    fn commpage_load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        crate::commpage::store(self);
        self.bus
            .read_ram(self.vcpu.commpage + (vaddr & 0xFFF), width)
            .ok_or(Self::bus_error(Access::Load))
    }

    fn commpage_store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception> {
        crate::commpage::store(self);
        let ma = self.vcpu.commpage + (vaddr & 0xFFF);
        if !self.bus.write_ram(self.core.id(), ma, width, value) {
            return Err(Self::bus_error(Access::Store));
        }
        crate::commpage::load(self);
        Ok(())
    }

    fn device_read(&mut self, gpa: GuestPhys, width: u8, access: Access) -> Result<u64, Exception> {
        crate::coalesce::ring::before_access(self, gpa);
        self.vdev_access();
        let v = self
            .wide
            .board
            .read(self.vcpu.index, self.now, gpa.0, width)
            .ok_or(Self::bus_error(access))?;
        self.trace.emit(MonEvent::Vdev {
            gpa: gpa.0,
            width,
            value: v,
            write: false,
        });
        Ok(v)
    }

    fn device_write(&mut self, gpa: GuestPhys, width: u8, value: u64) -> Result<(), Exception> {
        if crate::coalesce::ring::queue(self, gpa, width, value) {
            return Ok(());
        }
        self.vdev_access();
        self.trace.emit(MonEvent::Vdev {
            gpa: gpa.0,
            width,
            value,
            write: true,
        });
        if self
            .wide
            .board
            .write(self.vcpu.index, self.now, gpa.0, width, value)
        {
            Ok(())
        } else {
            Err(Self::bus_error(Access::Store))
        }
    }

    fn vdev_access(&mut self) {
        // An IPI to itself, an interrupt acknowledged.
        self.vcpu.may_interrupt = true;
        self.vcpu.stats.vdev_accesses += 1;
        self.charge(self.cost.vdev);
    }
}

// The data path every engine shares, whether it holds the VM-wide parts or
// runs outside a split VM's lock: RAM directly, a device (and the
// commpage, whose reload may change the ASID) with the VM-wide parts.
impl<'a, W: Wide<'a>> GuestCtx<'a, W> {
    pub(crate) fn read(
        &mut self,
        gpa: GuestPhys,
        width: u8,
        access: Access,
    ) -> Result<u64, Exception> {
        if gpa.0 < self.pmap.size() {
            return self.read_ram(gpa, width, access);
        }
        if access == Access::Fetch {
            return Err(Self::bus_error(access));
        }
        W::locked(self, |ctx| ctx.device_read(gpa, width, access))
    }

    pub(crate) fn write(&mut self, gpa: GuestPhys, width: u8, value: u64) -> Result<(), Exception> {
        if gpa.0 < self.pmap.size() {
            return self.write_ram(gpa, width, value);
        }
        W::locked(self, |ctx| ctx.device_write(gpa, width, value))
    }

    pub(crate) fn count_emulated(&mut self, name: &str) {
        if let Some(i) = crate::vcpu::EMULATED.iter().position(|n| *n == name) {
            if let Some(c) = self.vcpu.stats.emulated.get_mut(i) {
                *c += 1;
            }
        }
    }

    pub(crate) fn data_load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        if crate::commpage::covers(self, vaddr) {
            return W::locked(self, |ctx| ctx.commpage_load(vaddr, width));
        }
        let gpa = self.translate(vaddr, Access::Load)?;
        self.read(gpa, width, Access::Load)
    }

    pub(crate) fn data_store(
        &mut self,
        vaddr: u64,
        width: u8,
        value: u64,
    ) -> Result<(), Exception> {
        if crate::commpage::covers(self, vaddr) {
            return W::locked(self, |ctx| ctx.commpage_store(vaddr, width, value));
        }
        let gpa = self.translate(vaddr, Access::Store)?;
        self.write(gpa, width, value)
    }

    // LL/SC on RAM go through the bus's own, which are exact while other
    // threads store to the line (a VM split over threads, whose other VCPUs
    // run directly or in their engines outside the lock); with one thread
    // they are the link, read, test and write they always were. A device
    // is never linked.
    pub(crate) fn data_load_linked(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        let gpa = self.translate(vaddr, Access::Load)?;
        let v = match (gpa.0 < self.pmap.size()).then(|| self.pmap.translate(gpa)) {
            Some(ma) => {
                let ma = ma.ok_or(Self::bus_error(Access::Load))?;
                self.bus
                    .load_linked(self.core.id(), ma.0, width)
                    .ok_or(Self::bus_error(Access::Load))?
            }
            None => self.read(gpa, width, Access::Load)?,
        };
        // Virtual LLAddr: the guest-physical PA[35:4], as the CPU's would hold.
        self.vcpu.cp0.ll_addr = (gpa.0 >> 4) as u32;
        Ok(v)
    }

    pub(crate) fn data_store_conditional(
        &mut self,
        vaddr: u64,
        width: u8,
        value: u64,
    ) -> Result<bool, Exception> {
        let gpa = self.translate(vaddr, Access::Store)?;
        let cpu = self.core.id();
        if !self.bus.linked(cpu) {
            return Ok(false);
        }
        if gpa.0 >= self.pmap.size() {
            self.bus.unlink(cpu);
            self.write(gpa, width, value)?;
            return Ok(true);
        }
        let ma = match self.pmap.translate(gpa) {
            Some(ma) if !self.pmap.write_protected(gpa) => ma,
            found => {
                // As a plain store there (`write_ram`): the link goes.
                self.bus.unlink(cpu);
                self.vcpu.remap_blocked |= found.is_some();
                return Err(Self::bus_error(Access::Store));
            }
        };
        self.bus
            .store_conditional(cpu, ma.0, width, value)
            .ok_or(Self::bus_error(Access::Store))
    }
}

/// The engine's instructions for a VCPU of a VM split over threads, run
/// outside the VM's lock: the data path as held (`GuestCtx::read`: RAM
/// without the lock), every privileged instruction under the lock by the
/// held context's own emulation, so each has one implementation. (Kernel
/// code that computes runs in parallel; its MFC0s, MTC0s, TLB writes and
/// ERETs take turns, as its exits do.)
impl<'a> ExecContext for GuestCtx<'a, VmLock<'a>> {
    fn allow64(&self) -> bool {
        self.vcpu.cp0.allow64()
    }

    fn cop_usable(&self, n: u8) -> bool {
        self.vcpu.cp0.cop_usable(n)
    }

    fn load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        self.data_load(vaddr, width)
    }

    fn store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception> {
        self.data_store(vaddr, width, value)
    }

    fn load_linked(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        self.data_load_linked(vaddr, width)
    }

    fn store_conditional(&mut self, vaddr: u64, width: u8, value: u64) -> Result<bool, Exception> {
        self.data_store_conditional(vaddr, width, value)
    }

    fn read_cp0(&mut self, reg: u32) -> u64 {
        VmLock::locked(self, |ctx| ctx.read_cp0(reg))
    }

    fn write_cp0(&mut self, reg: u32, value: u64, dword: bool) {
        VmLock::locked(self, |ctx| ctx.write_cp0(reg, value, dword));
    }

    fn tlbr(&mut self) {
        VmLock::locked(self, |ctx| ctx.tlbr());
    }

    fn tlbwi(&mut self) {
        VmLock::locked(self, |ctx| ctx.tlbwi());
    }

    fn tlbwr(&mut self) {
        VmLock::locked(self, |ctx| ctx.tlbwr());
    }

    fn tlbp(&mut self) {
        VmLock::locked(self, |ctx| ctx.tlbp());
    }

    fn eret(&mut self) -> u64 {
        VmLock::locked(self, |ctx| ctx.eret())
    }

    fn cache(&mut self, op: u32, vaddr: u64) -> Result<(), Exception> {
        VmLock::locked(self, |ctx| ctx.cache(op, vaddr))
    }
}

// Here rather than beside `Wide`: it catches up with the VM's ASIDs
// (`tlbctl`), which `guest` sits below.
impl<'a> Wide<'a> for VmLock<'a> {
    fn locked<R>(ctx: &mut GuestCtx<'a, Self>, f: impl FnOnce(&mut GuestCtx<'_>) -> R) -> R {
        let VmLock {
            shared,
            generation,
            locked_cycles,
        } = &mut ctx.wide;
        let before = ctx.core.cycles();
        let r = shared.with(|held| {
            let VmHeld { vm, asids } = held;
            // Another CPU of the VM may have started a generation of its
            // ASIDs since this one last held the lock.
            crate::tlbctl::catch_up(ctx.core, asids, ctx.vcpu, generation);
            let mut held = GuestCtx {
                vm: ctx.vm,
                vcpu: &mut *ctx.vcpu,
                pmap: ctx.pmap,
                wide: VmParts {
                    board: &mut vm.board,
                    asids,
                    io: &mut vm.io,
                    bt: &mut vm.bt,
                },
                bus: &mut *ctx.bus,
                core: &mut *ctx.core,
                trace: &mut *ctx.trace,
                shootdowns: &mut *ctx.shootdowns,
                now: ctx.now,
                stop: &mut *ctx.stop,
                tlb_cursor: &mut *ctx.tlb_cursor,
                debug: ctx.debug.as_deref_mut(),
                cost: ctx.cost,
                fetch: ctx.fetch,
            };
            let r = f(&mut held);
            ctx.fetch = held.fetch;
            r
        });
        **locked_cycles += ctx.core.cycles().saturating_sub(before);
        r
    }

    #[inline]
    fn attention(ctx: &GuestCtx<'a, Self>) -> bool {
        ctx.wide.shared.attention()
    }
}
