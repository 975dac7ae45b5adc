//! Where blocks are compiled: on the caller's thread ([`Mode::Inline`]) or
//! on one compiler thread that every [`crate::Jit`] of the process shares
//! ([`Mode::Background`]), so that a CPU never waits for Cranelift: it runs
//! a block in tier 2 until its code is ready, and installs the code at a
//! block boundary ([`crate::Jit::poll`]). Compiled code computes exactly
//! what tier 2 computes, so when it arrives changes only the host time.
//!
//! The thread keeps one code module per `Jit` (its client), made on that
//! client's first request (nothing of Cranelift is set up before a block
//! gets hot) and freed when the client asks ([`Msg::Free`]: a reset or a
//! drop, after the client has forgotten every pointer into it). Requests
//! are served in the order sent, so a result that names an old epoch was
//! sent before that epoch's module was freed, and its client discards it.
//! The thread is never joined: a process that ends with compiles pending
//! does not wait for them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};
use crossbeam::channel::{self, Receiver, Sender};

use crate::ir::Block;
use crate::lower::{self, Callouts, Edge, Member};
use crate::{error, Backend, BlockFn, Error, Jit, LoadFn, StoreFn};

/// Where a [`crate::Jit`] compiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// On the caller's thread: a block runs compiled from the run that
    /// asked for it (tests; and a host where threads cost more than they
    /// save).
    #[default]
    Inline,
    /// On the shared compiler thread; the code is installed when ready.
    Background,
    /// As `Background`, the thread waiting this long before each compile
    /// (tests: code installed late, whatever the host's speed).
    Delayed(Duration),
}

/// One function to compile: its members (as `lower::Member`, owned so
/// that they can cross threads) and what the result is for.
pub(crate) struct Job {
    pub(crate) members: Vec<(Block, i64, Vec<Edge>)>,
    pub(crate) what: What,
}

/// What a compiled function is for: a block's own function (its index),
/// or a loop (the id of the client's pending loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum What {
    Block(u32),
    Loop(u64),
}

/// A compiled function (or why not) for `what` in the client's `epoch`.
pub(crate) struct Done {
    pub(crate) epoch: u32,
    pub(crate) what: What,
    pub(crate) func: Result<BlockFn, Error>,
}

enum Msg {
    Compile {
        client: u64,
        epoch: u32,
        /// The client's epoch now (`GONE`: dropped): a job of another is
        /// not compiled, as no one would run it.
        current: Arc<AtomicU64>,
        job: Job,
        delay: Duration,
        reply: Sender<Done>,
    },
    /// The client forgot every pointer into its module: free it.
    Free { client: u64 },
}

/// The compiler thread's queue, the thread spawned on first use.
fn queue() -> Option<&'static Sender<Msg>> {
    static QUEUE: OnceLock<Option<Sender<Msg>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::unbounded();
            let spawned = std::thread::Builder::new()
                .name("disco-jit".into())
                .spawn(move || serve(&rx));
            spawned.ok().map(|_| tx)
        })
        .as_ref()
}

fn serve(rx: &Receiver<Msg>) {
    let mut modules: HashMap<u64, Compiler> = HashMap::new();
    for msg in rx {
        match msg {
            Msg::Compile {
                client,
                epoch,
                current,
                job,
                delay,
                reply,
            } => {
                if current.load(Relaxed) != u64::from(epoch) {
                    let _ = reply.send(Done {
                        epoch,
                        what: job.what,
                        func: Err(error("stale")),
                    });
                    continue;
                }
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let func = match modules.entry(client) {
                    std::collections::hash_map::Entry::Occupied(c) => c.into_mut().build_job(&job),
                    std::collections::hash_map::Entry::Vacant(v) => match Compiler::new() {
                        Ok(c) => v.insert(c).build_job(&job),
                        Err(e) => Err(e),
                    },
                };
                let what = job.what;
                // A client that is gone needs no answer.
                let _ = reply.send(Done { epoch, what, func });
            }
            Msg::Free { client } => {
                modules.remove(&client);
            }
        }
    }
}

/// [`Remote::current`] of a client that is gone.
const GONE: u64 = u64::MAX;

/// A client's link to the compiler thread.
pub(crate) struct Remote {
    client: u64,
    current: Arc<AtomicU64>,
    delay: Duration,
    reply: Sender<Done>,
    pub(crate) done: Receiver<Done>,
}

impl Remote {
    pub(crate) fn new(delay: Duration) -> Remote {
        static CLIENTS: AtomicU64 = AtomicU64::new(0);
        let (reply, done) = channel::unbounded();
        Remote {
            client: CLIENTS.fetch_add(1, Relaxed),
            current: Arc::new(AtomicU64::new(0)),
            delay,
            reply,
            done,
        }
    }

    /// Sends `job`; false if there is no compiler thread.
    pub(crate) fn send(&self, epoch: u32, job: Job) -> bool {
        let msg = Msg::Compile {
            client: self.client,
            epoch,
            current: Arc::clone(&self.current),
            job,
            delay: self.delay,
            reply: self.reply.clone(),
        };
        queue().is_some_and(|q| q.send(msg).is_ok())
    }

    /// Frees this client's module (its pointers are all forgotten); it
    /// goes on at `next` epoch, or is gone (`None`): the jobs still queued
    /// for it are not compiled.
    pub(crate) fn free(&self, next: Option<u32>) {
        self.current.store(next.map_or(GONE, u64::from), Relaxed);
        if let Some(q) = queue() {
            let _ = q.send(Msg::Free {
                client: self.client,
            });
        }
    }
}

impl Jit {
    /// Compiles `job` here (`Some`), or sends it to the compiler thread
    /// (`None`: its answer comes through [`Jit::poll`]).
    pub(crate) fn submit(&mut self, job: Job) -> Result<Option<BlockFn>, Error> {
        match &mut self.backend {
            Backend::Inline(c) => {
                let c = match c {
                    Some(c) => c,
                    None => c.insert(Box::new(Compiler::new()?)),
                };
                c.build_job(&job).map(Some)
            }
            Backend::Remote(r) => {
                if !r.send(self.epoch, job) {
                    return Err(error("no compiler thread"));
                }
                self.pending += 1;
                Ok(None)
            }
        }
    }

    /// Installs the code the compiler thread has finished; called between
    /// runs. Answers of an older epoch, and loops a dropped block was in,
    /// are discarded; a block the compiler refused stays uncompiled (its
    /// handle runs nothing).
    pub fn poll(&mut self) {
        loop {
            let Backend::Remote(r) = &self.backend else {
                return;
            };
            let Ok(done) = r.done.try_recv() else {
                return;
            };
            self.install(done);
        }
    }

    /// [`Jit::poll`], waiting until every request is answered (tests and
    /// measurements: code installed at a chosen point of a run).
    pub fn wait(&mut self) {
        while self.pending > 0 {
            let Backend::Remote(r) = &self.backend else {
                return;
            };
            let Ok(done) = r.done.recv() else {
                return;
            };
            self.install(done);
        }
    }

    fn install(&mut self, done: Done) {
        self.pending = self.pending.saturating_sub(1);
        let (true, Ok(f)) = (done.epoch == self.epoch, done.func) else {
            return;
        };
        match done.what {
            What::Block(i) => {
                let i = i as usize;
                if let (Some(own), Some(entry)) = (self.funcs.get_mut(i), self.entry.get_mut(i)) {
                    (*own, *entry) = (Some(f), Some(f));
                    self.installed += 1;
                }
            }
            What::Loop(id) => {
                let Some(k) = self.pending_loops.iter().position(|l| l.0 == id) else {
                    return;
                };
                let (_, head, members) = self.pending_loops.swap_remove(k);
                self.install_loop(head as usize, f, members);
            }
        }
    }
}

/// Cranelift's state for one client: a code module and the contexts.
pub(crate) struct Compiler {
    module: Option<JITModule>,
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
    callouts: Callouts,
}

impl Compiler {
    pub(crate) fn new() -> Result<Compiler, Error> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(error)?;
        flags.set("is_pic", "false").map_err(error)?;
        // The IR verifier costs more than the rest of compiling a small
        // block; the unit tests and the differential tests check what it
        // would.
        flags.set("enable_verifier", "false").map_err(error)?;
        let isa = cranelift_native::builder()
            .map_err(error)?
            .finish(settings::Flags::new(flags))
            .map_err(error)?;
        let callouts = Callouts {
            load: crate::load_callout as LoadFn as usize as i64,
            store: crate::store_callout as StoreFn as usize as i64,
            cc: isa.default_call_conv(),
            ptr: isa.pointer_type(),
            config: isa.frontend_config(),
        };
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(Compiler {
            ctx: module.make_context(),
            module: Some(module),
            fctx: FunctionBuilderContext::new(),
            callouts,
        })
    }

    pub(crate) fn build_job(&mut self, job: &Job) -> Result<BlockFn, Error> {
        let members: Vec<Member<'_>> = job
            .members
            .iter()
            .map(|(block, links, edges)| Member {
                block,
                links: *links,
                edges: edges.clone(),
            })
            .collect();
        self.build(&members)
    }

    /// Compiles one function from `members` (the first is where it starts).
    fn build(&mut self, members: &[Member<'_>]) -> Result<BlockFn, Error> {
        let Some(module) = self.module.as_mut() else {
            return Err(error("no code module"));
        };
        module.clear_context(&mut self.ctx);
        self.ctx.func.signature = lower::block_signature(self.callouts.cc, self.callouts.ptr);
        lower::lower(members, &mut self.ctx.func, &mut self.fctx, self.callouts);
        let id = module
            .declare_anonymous_function(&self.ctx.func.signature)
            .map_err(error)?;
        self.ctx.set_disasm(disasm());
        let defined = module.define_function(id, &mut self.ctx);
        if let Some(text) = self.ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
            eprintln!("disco-jit: {} member(s)\n{text}", members.len());
        }
        module.clear_context(&mut self.ctx);
        defined.map_err(error)?;
        module.finalize_definitions().map_err(error)?;
        let entry = module.get_finalized_function(id);
        // SAFETY: `entry` is the finalized (executable) entry of a function
        // compiled from `lower::block_signature`, which is `BlockFn`'s C
        // signature (safety argument, point 2); it lives in `module`, which
        // is freed only when its client has forgotten every copy (point 1).
        Ok(unsafe { std::mem::transmute::<*const u8, BlockFn>(entry) })
    }
}

/// `DISCO_JIT_DISASM` set: every compiled function's machine code goes to
/// standard error (docs/tiers.md, "Measuring"). Read once per process.
fn disasm() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("DISCO_JIT_DISASM").is_some())
}

impl Drop for Compiler {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: a compiler is dropped only when its client has
            // cleared every pointer into its module (`Jit::free`, or the
            // thread serving `Msg::Free`, which the client sends after
            // clearing them), or with the client itself (point 1).
            unsafe { module.free_memory() };
        }
    }
}
