/*
 * vm.c - physical pages, address spaces, page tables, the TLB.
 *
 * Page tables: per address space a page directory of 1024 words (one per
 * 2 MB of user space) holding the kernel (window) address of a page-table
 * page, or 0. A page-table page holds 512 PTEs of 8 bytes each; the first
 * word of a PTE is the EntryLo value (PFN|C|D|V), the second is unused.
 * That is the layout the R4000 Context register indexes (BadVPN2 << 4:
 * 16 bytes per even/odd pair), so the current process's page-table pages,
 * mapped consecutively at PTWIN_BASE (Context.PTEBase), form a linear page
 * table and the refill handler is 8 instructions (entry.S).
 *
 * TLB: entries 0-1 wired (window, per-CPU page); the rest are replaced at
 * random. ASIDs are per CPU with a generation number (as in Linux): a
 * process gets a fresh ASID on a CPU when its generation there is stale;
 * when a CPU runs out of ASIDs it flushes its TLB and starts a new
 * generation. Changing a mapping of a (single-threaded) process therefore
 * never needs a cross-CPU shootdown: stale entries on other CPUs are left
 * under an ASID that the process will not use again.
 */
#include "kern.h"

#define NTLB 48
#define PTE_PA(pte)	(((pte) >> PTE_PFN_SHIFT) << PAGE_SHIFT)
#define MKPTE(pa, fl)	((((pa) >> PAGE_SHIFT) << PTE_PFN_SHIFT) | PTE_CACHED | PTE_V | (fl))
#define PGDIR_N		1024
#define PTES_PER_PT	512

/* Free pages: those freed since boot on a list linked through their first
 * words, and those never handed out, [fresh_pa, ram_top), which boot does
 * not touch. Linking every page at boot would write to all of RAM: under
 * the monitor each first touch of a page pair is an exit (about 4000 of
 * them, 0.29 M cycles, for 32 MB). */
static uint32_t free_head;	/* PA of the first freed page, or 0 */
static uint32_t fresh_pa, ram_top;
static uint32_t nfree;
#ifdef KESTREL_LAB
static uint32_t nalloc;	/* pages handed out since boot: labstat(1) */
static uint32_t nwprotect;	/* writes faulting on a valid read-only PTE: labstat(2) */
uint32_t pages_allocated(void) { return nalloc; }
uint32_t write_protect_faults(void) { return nwprotect; }
#endif
static uint16_t *pageref;	/* reference count per physical page */
static uint32_t shpage_pa;

#define NAS (NPROC + 4)
static struct addrspace aspool[NAS];
static uint8_t as_used[NAS];

void vm_init(uint32_t first_free, uint32_t ram_end)
{
	uint32_t npages = ram_end >> PAGE_SHIFT;
	pageref = KVA(first_free);
	memset(pageref, 0, npages * 2);
	first_free += (npages * 2 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	fresh_pa = first_free;
	ram_top = ram_end & ~(PAGE_SIZE - 1);
	nfree = fresh_pa < ram_top ? (ram_top - fresh_pa) >> PAGE_SHIFT : 0;
	shpage_pa = page_alloc();	/* the shared page: ref 1 forever */
}

uint32_t pages_free(void) { return nfree; }
uint32_t shared_page_pa(void) { return shpage_pa; }

uint32_t page_alloc_try(void)
{
	uint32_t pa = free_head;
	if (pa) {
		free_head = *(uint32_t *)KVA(pa);
	} else if (fresh_pa < ram_top) {
		pa = fresh_pa;	/* ascending, as the pages are in RAM */
		fresh_pa += PAGE_SIZE;
	} else {
		return 0;
	}
	nfree--;
#ifdef KESTREL_LAB
	nalloc++;
#endif
	pageref[pa >> PAGE_SHIFT] = 1;
	memset(KVA(pa), 0, PAGE_SIZE);
	return pa;
}

uint32_t page_alloc(void)
{
	uint32_t pa = page_alloc_try();
	if (!pa)
		panic("out of memory");
	return pa;
}

void page_ref(uint32_t pa) { pageref[pa >> PAGE_SHIFT]++; }

void page_unref(uint32_t pa)
{
	if (--pageref[pa >> PAGE_SHIFT] == 0) {
		*(uint32_t *)KVA(pa) = free_head;
		free_head = pa;
		nfree++;
	}
}

/* ---- TLB ---- */

static inline void tlbp(void) { __asm__ __volatile__("tlbp\n\tnop\n\tnop" ::: "memory"); }
static inline void tlbwi(void) { __asm__ __volatile__("tlbwi\n\tnop\n\tnop" ::: "memory"); }
static inline void tlbwr(void) { __asm__ __volatile__("tlbwr\n\tnop\n\tnop" ::: "memory"); }

void tlb_write_index(int idx, uint32_t hi, uint32_t lo0, uint32_t lo1, uint32_t mask)
{
	uint32_t old = mfc0n(CP0_ENTRYHI);
	mtc0n(CP0_PAGEMASK, mask);
	mtc0n(CP0_ENTRYHI, hi);
	mtc0n(CP0_ENTRYLO0, lo0);
	mtc0n(CP0_ENTRYLO1, lo1);
	mtc0n(CP0_INDEX, idx);
	tlbwi();
	mtc0n(CP0_PAGEMASK, PM_4K);
	mtc0n(CP0_ENTRYHI, old);
}

/* Invalidate every non-wired entry: each gets a distinct VPN2 in KSEG0,
 * which is never translated, so entries never match (nor each other). */
void tlb_flush_all(void)
{
	for (int i = NWIRED; i < NTLB; i++)
		tlb_write_index(i, 0x80000000 + i * 0x2000, 0, 0, PM_4K);
}

void tlb_init(void) { tlb_flush_all(); }

/* Write (hi, lo0, lo1): over a matching entry if any, else at random. */
static void tlb_update(uint32_t hi, uint32_t lo0, uint32_t lo1)
{
	uint32_t old = mfc0n(CP0_ENTRYHI);
	mtc0n(CP0_ENTRYHI, hi);
	tlbp();
	uint32_t idx = mfc0n(CP0_INDEX);
	mtc0n(CP0_ENTRYLO0, lo0);
	mtc0n(CP0_ENTRYLO1, lo1);
	if (idx & 0x80000000)
		tlbwr();
	else
		tlbwi();
	mtc0n(CP0_ENTRYHI, old);
}

void vm_activate(struct proc *p)
{
	struct cpu *c = curcpu;
	if (!p) {
		mtc0n(CP0_ENTRYHI, 0);
		return;
	}
	tlb_shootdown_drain();
	if (p->asid_gen[c->id] != c->asid_gen) {
		if (c->asid_next > 255) {
			tlb_flush_all();
			c->asid_gen++;
			c->asid_next = 1;
		}
		p->asid[c->id] = c->asid_next++;
		p->asid_gen[c->id] = c->asid_gen;
	}
	mtc0n(CP0_ENTRYHI, p->asid[c->id]);
}

/* ---- TLB shootdown ----
 * A process runs on one CPU at a time, but the CPUs it ran on before may
 * still hold its translations under the ASIDs it has there. When one of
 * its pages moves (a copy-on-write break), each such CPU is sent the
 * stale entry (VPN2 | that CPU's ASID for the process) and an IPI; it
 * drops the entry in its IPI handler. The sender does not wait: kernel
 * code runs with interrupts off under the BKL, so the target may pick the
 * process off the run queue before it takes the IPI; vm_activate drains
 * the queue first, which closes that window. The queue is BKL-protected. */

static void tlb_invalidate(uint32_t hi)
{
	uint32_t old = mfc0n(CP0_ENTRYHI);
	mtc0n(CP0_ENTRYHI, hi);
	tlbp();
	uint32_t idx = mfc0n(CP0_INDEX);
	mtc0n(CP0_ENTRYHI, old);
	if (!(idx & 0x80000000))
		tlb_write_index(idx, 0x80000000 + idx * 0x2000, 0, 0, PM_4K);
}

void tlb_shootdown(struct proc *p, uint32_t va)
{
	/* lab cow: begin shootdown */
	for (int i = 0; i < ncpus; i++) {
		struct cpu *c = cpus[i];
		if (i == curcpu->id || p->asid_gen[i] != c->asid_gen)
			continue;	/* no live ASID there: nothing cached */
		if (c->shoot_n < SHOOT_MAX)
			c->shoot[c->shoot_n++] = (va & ~0x1fffu) | p->asid[i];
		else
			p->asid_gen[i] = 0;	/* queue full: a fresh ASID there */
		ipi_send(i, IPI_TLB);
	}
	/* lab cow: end shootdown */
}

void tlb_shootdown_drain(void)
{
	struct cpu *c = curcpu;
	for (uint32_t k = 0; k < c->shoot_n; k++)
		tlb_invalidate(c->shoot[k]);
	c->nshoot += c->shoot_n;
	c->shoot_n = 0;
}

/* p's mappings changed: its TLB entries anywhere are stale. */
void vm_forget_asids(struct proc *p)
{
	for (int i = 0; i < MAXCPU; i++)
		p->asid_gen[i] = 0;
	if (curcpu->cur == p)
		vm_activate(p);
}

/* ---- address spaces ---- */

struct addrspace *as_create(void)
{
	for (int i = 0; i < NAS; i++) {
		if (!as_used[i]) {
			as_used[i] = 1;
			struct addrspace *as = &aspool[i];
			memset(as, 0, sizeof(*as));
			as->pgdir = KVA(page_alloc());
			return as;
		}
	}
	panic("out of address spaces");
}

static uint32_t *pte_slot(struct addrspace *as, uint32_t va, int create)
{
	uint32_t *pt = (uint32_t *)as->pgdir[va >> 21];
	if (!pt) {
		if (!create)
			return NULL;
		uint32_t pa = page_alloc_try();
		if (!pa)
			return NULL;
		pt = KVA(pa);
		as->pgdir[va >> 21] = (uint32_t)pt;
	}
	return &pt[((va >> PAGE_SHIFT) & (PTES_PER_PT - 1)) * 2];
}

void as_destroy(struct addrspace *as)
{
	for (int i = 0; i < PGDIR_N; i++) {
		uint32_t *pt = (uint32_t *)as->pgdir[i];
		if (!pt)
			continue;
		for (int j = 0; j < PTES_PER_PT; j++)
			if (pt[j * 2] & PTE_V)
				page_unref(PTE_PA(pt[j * 2]));
		page_unref(KPA(pt));
	}
	page_unref(KPA(as->pgdir));
	as_used[as - aspool] = 0;
}

/* Copy-on-write fork: share every page, read-only in both (except the
 * shared page, which stays writable and shared). */
struct addrspace *as_fork(struct addrspace *src)
{
	struct addrspace *as = as_create();
	uint32_t *dir = as->pgdir;
	*as = *src;
	as->pgdir = dir;
	for (int i = 0; i < PGDIR_N; i++) {
		uint32_t *spt = (uint32_t *)src->pgdir[i];
		if (!spt)
			continue;
		uint32_t *dpt = KVA(page_alloc());
		as->pgdir[i] = (uint32_t)dpt;
		for (int j = 0; j < PTES_PER_PT; j++) {
			uint32_t pte = spt[j * 2];
			if (!(pte & PTE_V))
				continue;
			page_ref(PTE_PA(pte));
			if (PTE_PA(pte) != shpage_pa)
				pte &= ~PTE_D;
			spt[j * 2] = dpt[j * 2] = pte;
		}
	}
	return as;
}

int as_map_page(struct addrspace *as, uint32_t va, uint32_t pa, int writable)
{
	uint32_t *slot = pte_slot(as, va, 1);
	if (!slot)
		return -1;
	if (*slot & PTE_V)
		page_unref(PTE_PA(*slot));
	*slot = MKPTE(pa, writable ? PTE_D : 0);
	return 0;
}

static void tlb_reload(struct addrspace *as, uint32_t va)
{
	uint32_t *pair = pte_slot(as, va & ~0x1fff, 0);
	uint32_t asid = mfc0n(CP0_ENTRYHI) & 0xff;
	tlb_update((va & ~0x1fff) | asid, pair ? pair[0] : 0, pair ? pair[2] : 0);
}

/*
 * A TLB invalid / modified exception on user address va (code = EXC_TLBL,
 * EXC_TLBS or EXC_MOD). Returns 0 when handled, -1 for a bad access.
 */
int vm_fault(struct addrspace *as, uint32_t va, int code)
{
	uint32_t page = va & ~(PAGE_SIZE - 1);
	int rw, shared = 0;
	if (va >= as->data_lo && va < ((as->brk + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)))
		rw = 1;
	else if (va >= as->stack_lo && va < as->stack_hi)
		rw = 1;
	else if (as->shared && page == SHPAGE_VA)
		rw = 1, shared = 1;
	else if (va >= as->text_lo && va < as->text_hi)
		rw = 0;
	else
		return -1;
	uint32_t *slot = pte_slot(as, va, 1);
	if (!slot)
		return -1;
	uint32_t pte = *slot;
	if (!(pte & PTE_V)) {
		/* lab tlb: begin demand-zero */
		/* demand-zero (or the shared page) */
		uint32_t pa;
		if (shared) {
			pa = shpage_pa;
			page_ref(pa);
		} else if (!(pa = page_alloc_try())) {
			return -1;
		}
		*slot = MKPTE(pa, rw ? PTE_D : 0);
		/* lab tlb: end demand-zero */
	} else if ((code == EXC_MOD || code == EXC_TLBS) && !(pte & PTE_D)) {
#ifdef KESTREL_LAB
		nwprotect++;
#endif
		if (!rw)
			return -1;
		/* lab cow: begin break */
		uint32_t pa = PTE_PA(pte);
		if (pageref[pa >> PAGE_SHIFT] > 1) {
			/* copy-on-write break */
			uint32_t npa = page_alloc_try();
			if (!npa)
				return -1;
			memcpy(KVA(npa), KVA(pa), PAGE_SIZE);
			page_unref(pa);
			*slot = MKPTE(npa, PTE_D);
			/* other CPUs may still map the old frame for us */
			tlb_shootdown(curcpu->cur, va);
		} else {
			*slot = pte | PTE_D;	/* last sharer: just make it writable */
		}
		/* lab cow: end break */
	}
	tlb_reload(as, va);
	return 0;
}

/*
 * The refill handler missed on the linear page table itself (address bva
 * in the PT window): map the pair of page-table pages containing it.
 */
void ptwin_fault(struct addrspace *as, uint32_t bva)
{
	uint32_t idx = (bva - PTWIN_BASE) >> PAGE_SHIFT;	/* pgdir index */
	if (idx >= PGDIR_N)
		panic("TLB miss on kernel address 0x%x",
		      ((bva - PTWIN_BASE) >> 3) << PAGE_SHIFT);
	if (!as->pgdir[idx]) {
		uint32_t pa = page_alloc_try();
		if (!pa)
			panic("out of memory for page tables");
		as->pgdir[idx] = (uint32_t)KVA(pa);
	}
	uint32_t e = idx & ~1u, lo[2];
	for (int k = 0; k < 2; k++)
		lo[k] = as->pgdir[e + k] ? MKPTE(KPA(as->pgdir[e + k]), 0) : 0;
	uint32_t asid = mfc0n(CP0_ENTRYHI) & 0xff;
	tlb_update((bva & ~0x1fff) | asid, lo[0], lo[1]);
}

/* ---- ELF loading ---- */

struct elfhdr {
	uint8_t ident[16];
	uint16_t type, machine;
	uint32_t version, entry, phoff, shoff, flags;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct proghdr {
	uint32_t type, offset, vaddr, paddr, filesz, memsz, flags, align;
};

int elf_load(struct addrspace *as, const uint8_t *img, uint32_t len, uint32_t *entry)
{
	const struct elfhdr *eh = (const void *)img;
	if (len < sizeof(*eh) || img[0] != 0x7f || img[1] != 'E' || img[2] != 'L' ||
	    img[3] != 'F' || img[4] != 1 || img[5] != 2 || eh->machine != 8)
		return -1;
	as->text_lo = as->data_lo = 0xffffffff;
	for (int i = 0; i < eh->phnum; i++) {
		const struct proghdr *ph = (const void *)(img + eh->phoff + i * eh->phentsize);
		if (ph->type != 1 || ph->memsz == 0)
			continue;
		if (ph->vaddr >= USER_TOP || ph->vaddr + ph->memsz > USER_TOP ||
		    ph->offset + ph->filesz > len)
			return -1;
		int w = ph->flags & 2;
		uint32_t lo = ph->vaddr & ~(PAGE_SIZE - 1);
		uint32_t hi = (ph->vaddr + ph->memsz + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		for (uint32_t va = lo; va < hi; va += PAGE_SIZE) {
			uint32_t pa = page_alloc_try();
			if (!pa || as_map_page(as, va, pa, w) < 0)
				return -1;
			/* copy the part of the file image that falls in this page */
			uint32_t fs = ph->vaddr, fe = ph->vaddr + ph->filesz;
			uint32_t s = va > fs ? va : fs, e = va + PAGE_SIZE < fe ? va + PAGE_SIZE : fe;
			if (s < e)
				memcpy((uint8_t *)KVA(pa) + (s - va), img + ph->offset + (s - fs), e - s);
		}
		if (w) {
			if (lo < as->data_lo)
				as->data_lo = lo;
			if (hi > as->brk)
				as->brk = hi;
		} else {
			if (lo < as->text_lo)
				as->text_lo = lo;
			if (hi > as->text_hi)
				as->text_hi = hi;
		}
	}
	if (as->data_lo == 0xffffffff)
		as->data_lo = as->brk = as->text_hi;
	as->stack_hi = USTACK_TOP;
	as->stack_lo = USTACK_TOP - USTACK_SIZE;
	*entry = eh->entry;
	return 0;
}
