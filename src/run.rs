//! `disco run`: wiring the command line to the machine or the monitor.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail};
use monitor::{Monitor, MonitorExit, VmEnd};
use sim::dev::DiskImage;
use sim::loader::{Image, Symbols};
use sim::{Exit, Machine};

use sim::config::{ConfigError, MachineSetup, Settings};
use sim::trace::{Categories, TextTracer};

use crate::cli::{DumpFormat, RunArgs};
use crate::exit::Ending;
use crate::out::{OutputError, TraceCheck, TraceSink};
use crate::watch::{Polling, Progress};
use monitor::spec::VmSpec;

/// The committed images: beside the current directory, or the source tree.
pub(crate) fn images_dir() -> PathBuf {
    let local = PathBuf::from("guest-kits/images");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("guest-kits/images")
    }
}

/// The image the demo boots in each of its two VMs: the teaching kernel,
/// whose init runs each workload once and halts.
fn default_image() -> PathBuf {
    images_dir().join("kestrel.elf")
}

pub(crate) fn load_image(path: &Path, ram: u64) -> anyhow::Result<(Image, Symbols)> {
    monitor::build::read_image(path, ram).map_err(|e| anyhow!("{e}"))
}

/// Runs and says how the run ended (src/exit.rs turns that into a status).
pub(crate) fn run(args: RunArgs) -> anyhow::Result<Ending> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
            Settings::from_toml(&text)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
                .relative_to(config_dir(path))
        }
        None => Settings::default(),
    };
    let mut specs = vm_specs(&args, &file)?;
    let s = args.settings().over(file);
    let bad = |e: ConfigError| setting_error(&args, e);
    refuse_combinations(&args, &s, &specs)?;
    let categories = match &s.trace {
        Some(t) => Categories::parse(t).map_err(|e| anyhow!("--trace: {e}"))?,
        None => Categories::default(),
    };
    let dump = match s.dump_regs.as_deref() {
        None => None,
        Some("text") => Some(DumpFormat::Text),
        Some("json") => Some(DumpFormat::Json),
        Some(other) => bail!("dump_regs: {other:?} is neither \"text\" nor \"json\""),
    };
    let timeline = !args.at.is_empty() || !s.at.is_empty();
    if s.image.is_some() && !timeline && (!args.costs.is_empty() || s.cost.is_some()) {
        bail!(
            "--cost sets the monitor's cost table: it applies to --vm runs and --at timelines, not the bare machine"
        );
    }
    if s.parallel == Some(true) {
        parallel_apart(&args, &s)?;
    }
    if let Some(image) = s.image.clone() {
        crate::files::native_apart(&s, args.config.as_deref())?;
        let setup = s.machine().map_err(bad)?;
        return run_native(&args, &s, setup, &image, categories, dump);
    }
    if specs.is_empty() {
        // The demo: two VMs of the teaching kernel on a two-CPU machine.
        let img = default_image();
        specs = ["vm0", "vm1"]
            .iter()
            .map(|name| VmSpec::parse(&format!("{},name={name}", img.display())))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("{e}"))?;
        crate::out::print(DEMO_HEADER)?;
    }
    if s.numa.is_some() {
        bail!(
            "{}: a NUMA topology describes the bare machine; it cannot be used with VMs under the monitor",
            from_file(&args, "numa")
        );
    }
    let pcpus = s
        .ncpus(specs.len().min(sim::machine::MAX_CPUS))
        .map_err(bad)?;
    let quantum = s.quantum().map_err(bad)?;
    let max_cycles = s.max_cycles().map_err(bad)?;
    if args.gdb_vm.is_some() && args.gdb.is_none() {
        bail!("--gdb-vm needs --gdb PORT");
    }
    let gdb = args
        .gdb
        .map(|port| (port, args.gdb_wait, args.gdb_vm.clone()));
    run_monitor(
        &args,
        &s,
        (pcpus, quantum, max_cycles),
        &specs,
        categories,
        dump,
        gdb,
    )
}

/// The VMs to run: `--vm`'s, else the configuration file's `[[vm]]` tables.
fn vm_specs(args: &RunArgs, file: &Settings) -> anyhow::Result<Vec<VmSpec>> {
    let specs = args
        .vms
        .iter()
        .map(|s| VmSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{e}"))?;
    if !specs.is_empty() {
        return Ok(specs);
    }
    let dir = args.config.as_deref().map_or(Path::new(""), config_dir);
    file.vm
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let origin = format!("{}[{i}]", from_file(args, "vm"));
            VmSpec::from_table(table.clone(), origin, dir).map_err(|e| anyhow!("{e}"))
        })
        .collect()
}

/// `key` of the configuration file, named for an error line ("" without one).
fn from_file(args: &RunArgs, key: &str) -> String {
    args.config
        .as_ref()
        .map_or(String::new(), |p| format!("{}: {key}", p.display()))
}

/// Options that do not go together, each refused with the line that says why.
fn refuse_combinations(args: &RunArgs, s: &Settings, specs: &[VmSpec]) -> anyhow::Result<()> {
    if args.native && !specs.is_empty() {
        bail!("--native runs one image on the bare machine; it cannot be combined with --vm");
    }
    if !specs.is_empty()
        && (s.boot_mem.is_some()
            || !args.at.is_empty()
            || !s.at.is_empty()
            || s.remap_index.is_some()
            || s.remap.is_some())
    {
        bail!("--boot-mem, --at, --remap and --remap-index are for a kernel booted on the bare machine (IMAGE), not --vm");
    }
    if s.split.is_some() && s.image.is_some() {
        bail!("--split is for the monitor's VMs (--vm, the demo); the bare machine's CPUs are never grouped");
    }
    if s.image.is_some() && !specs.is_empty() {
        bail!("give either an IMAGE (native) or --vm specifications, not both");
    }
    if s.disk_write == Some(true) && s.disk.is_none() {
        bail!("--disk-write: there is no --disk image to write back to");
    }
    if s.disk.is_some() && s.image.is_none() {
        bail!(
            "--disk is the bare machine's disk; give a VM a disk with --vm IMAGE,disk=FILE \
             (its writes stay the VM's own and are not written back)"
        );
    }
    Ok(())
}

/// The parallel mode runs the physical CPUs (the bare machine's or the
/// monitor's) on host threads, with nothing that needs one deterministic
/// interleaving (docs/parallel.md).
fn parallel_apart(args: &RunArgs, s: &Settings) -> anyhow::Result<()> {
    if args.gdb.is_some() {
        bail!("--gdb needs the deterministic mode (one interleaving to stop and step); it cannot be combined with --parallel");
    }
    if !args.at.is_empty() || !s.at.is_empty() {
        bail!("--at changes the machine at a set cycle (virtualize, remap), which needs the deterministic mode; it cannot be combined with --parallel");
    }
    Ok(())
}

/// The directory a config file's relative paths start from.
fn config_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// A bad setting, named as the user gave it: the flag, or the key in the
/// config file.
pub(crate) fn setting_error(args: &RunArgs, e: ConfigError) -> anyhow::Error {
    let ConfigError::Invalid { key, problem } = &e else {
        return anyhow!("{e}");
    };
    let flag = match *key {
        "cpus" => args.cpus.is_some(),
        "mem" => args.mem.is_some(),
        "boot_mem" => args.boot_mem.is_some(),
        "quantum" => args.quantum.is_some(),
        "max_cycles" => args.max_cycles.is_some(),
        "threads" => args.threads.is_some(),
        _ => false,
    };
    match &args.config {
        _ if flag => anyhow!("--{}: {problem}", key.replace('_', "-")),
        Some(path) => anyhow!("{}: {key}: {problem}", path.display()),
        None => anyhow!("{e}"),
    }
}

/// What the demo prints first: what runs, and how to read its summary.
const DEMO_HEADER: &str = "\
disco demo: two VMs (vm0, vm1) of the teaching kernel kestrel under the monitor, on two simulated MIPS R4000 CPUs.
In the summary, \"exits\" are the guest's traps into the monitor, and \"monitor %\" is the share of a VM's cycles the monitor spent (its emulation engine included).
";

fn trace_sink(s: &Settings) -> anyhow::Result<(Box<dyn Write>, TraceCheck)> {
    let (out, what): (Box<dyn Write>, String) = match &s.trace_file {
        Some(p) => (
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .map_err(|e| anyhow!("{}: cannot create: {e}", p.display()))?,
            )),
            format!("the trace file {}", p.display()),
        ),
        None => (
            Box::new(std::io::stderr()),
            "the trace to standard error".to_string(),
        ),
    };
    let (sink, check) = TraceSink::new(out, what);
    Ok((Box::new(sink), check))
}

/// The progress line, unless a trace goes to the same terminal.
fn progress(s: &Settings, tracing: bool) -> Progress {
    Progress::new(tracing && s.trace_file.is_none())
}

/// Standard input, read on a thread so the guest's getchar never blocks
/// the machine; bytes reach the console at the next quantum boundary.
pub(crate) fn stdin_bytes() -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// A disk image file, opened (its sectors are read when the guest asks).
pub(crate) fn open_disk(path: &Path) -> anyhow::Result<DiskImage> {
    monitor::build::open_disk(path).map_err(|e| anyhow!("{e}"))
}

/// Runs quantum after quantum, with `pump` (input, output, progress) at
/// each boundary, until the machine ends (`Some`) or Ctrl-C (`None`).
pub(crate) fn drive<M, E>(
    m: &mut M,
    quantum: impl Fn(&mut M) -> Option<E>,
    pump: &mut impl FnMut(&mut M) -> Result<(), OutputError>,
) -> Result<Option<E>, OutputError> {
    let _polling = Polling::start();
    pump(m)?;
    loop {
        let end = quantum(m);
        pump(m)?;
        if end.is_some() {
            return Ok(end);
        }
        if crate::watch::interrupted() {
            return Ok(None);
        }
    }
}

/// `serve` runs the GDB session with a hook for `pump`. The hook cannot
/// stop the session, so the first failed write is kept and reported when
/// the session ends.
fn under_gdb<M, E>(
    pump: &mut impl FnMut(&mut M) -> Result<(), OutputError>,
    serve: impl FnOnce(&mut dyn FnMut(&mut M)) -> anyhow::Result<E>,
) -> anyhow::Result<E> {
    let mut failed = None;
    let end = serve(&mut |m: &mut M| {
        if failed.is_none() {
            failed = pump(m).err();
        }
    })?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(end),
    }
}

fn run_native(
    args: &RunArgs,
    s: &Settings,
    setup: MachineSetup,
    image: &Path,
    categories: Categories,
    dump: Option<DumpFormat>,
) -> anyhow::Result<Ending> {
    let ram = setup.boot_mem;
    let (img, symbols) = load_image(image, ram)?;
    let disk = s.disk.as_deref().map(open_disk).transpose()?;
    let mut m = setup.build(disk);
    if !img.load_into(&mut m) {
        bail!("{}: does not fit in {ram} bytes of RAM", image.display());
    }
    let mut trace_check = None;
    if !categories.is_empty() {
        let (sink, check) = trace_sink(s)?;
        trace_check = Some(check);
        m.observe(Box::new(TextTracer::new(categories, symbols.clone(), sink)));
    }
    let timeline = crate::timeline::entries(args, s)?;
    if !timeline.is_empty() {
        return crate::timeline::run(args, s, m, timeline, dump);
    }
    let mut progress = progress(s, trace_check.is_some());
    let start = Instant::now();
    let stdout = std::io::stdout();
    let input = stdin_bytes();
    // Between quanta: input in, output out; a failed write stops the run.
    let mut console = |m: &mut Machine| -> Result<(), OutputError> {
        while let Ok(bytes) = input.try_recv() {
            m.bus.board.console.push_input(&bytes);
        }
        let out = m.take_console();
        if !out.is_empty() {
            progress.clear();
            let mut lock = stdout.lock();
            lock.write_all(&out)
                .and_then(|()| lock.flush())
                .map_err(OutputError::stdout)?;
        }
        trace_check.as_ref().map_or(Ok(()), TraceCheck::take)?;
        progress.tick(m.now, || m.instructions());
        Ok(())
    };
    // `None`: Ctrl-C.
    let exit = match args.gdb {
        Some(port) => Some(under_gdb(&mut console, |hook| {
            crate::gdb::serve(&mut m, port, args.gdb_wait, hook)
        })?),
        None => drive(&mut m, Machine::run_quantum, &mut console)?,
    };
    progress.clear();
    let secs = start.elapsed().as_secs_f64();
    m.flush_observers();
    if let Some(check) = &trace_check {
        check.take()?;
    }
    let ending = match exit {
        Some(Exit::Halted { status }) => Ending::Halted { status },
        Some(Exit::CycleLimit { cycles }) => Ending::CycleLimit { cycles },
        Some(Exit::Idle | Exit::Debug { .. }) => Ending::Idle,
        None => Ending::Interrupted {
            cycles: m.now,
            positions: crate::report::native_positions(&m, &symbols),
        },
    };
    if s.disk_write == Some(true) && m.bus.board.disk.modified() {
        if let Some(path) = &s.disk {
            m.bus.board.disk.write_back(path).map_err(|e| {
                anyhow!("{}: cannot write the disk image back: {e}", path.display())
            })?;
        }
    }
    let mut w = stdout.lock();
    if s.stats == Some(true) {
        crate::report::native_stats(&mut w, &m, secs).map_err(OutputError::stdout)?;
    }
    if let Some(fmt) = dump {
        crate::report::dump_native(&mut w, &m, fmt).map_err(OutputError::stdout)?;
    }
    Ok(ending)
}

fn run_monitor(
    args: &RunArgs,
    s: &Settings,
    (pcpus, quantum, max_cycles): (usize, u64, Option<u64>),
    specs: &[VmSpec],
    categories: Categories,
    dump: Option<DumpFormat>,
    gdb: Option<(u16, bool, Option<String>)>,
) -> anyhow::Result<Ending> {
    let built = crate::vms::monitor(args, s, (pcpus, quantum, max_cycles), specs)?;
    let (mut m, console_files) = (built.monitor, built.consoles);
    m.trace.enabled = !categories.is_empty();
    m.trace.engine_insns = categories.insn;
    m.set_parallel(s.threads().map_err(|e| setting_error(args, e))?);
    if let Some(split) = &s.split {
        if s.parallel != Some(true) {
            bail!(
                "split = {split:?} is for the parallel mode; set parallel = true (--parallel) too"
            );
        }
        m.set_split(split.parse().map_err(|e| anyhow!("--split {e}"))?);
    }
    let consoles = crate::report::Prefixer::new(
        m.vms.iter().map(|v| v.name.clone()).collect(),
        console_files,
    );
    run_vms(s, m, consoles, dump, gdb)
}

/// Runs the VMs to their end or to Ctrl-C, their consoles and the trace
/// written out between quanta, then prints the summary and what was asked.
fn run_vms(
    s: &Settings,
    mut m: Monitor,
    mut consoles: crate::report::Prefixer,
    dump: Option<DumpFormat>,
    gdb: Option<(u16, bool, Option<String>)>,
) -> anyhow::Result<Ending> {
    let (mut sink, trace_check) = if m.trace.enabled {
        let (w, check) = trace_sink(s)?;
        (Some(w), Some(check))
    } else {
        (None, None)
    };
    let mut progress = progress(s, m.trace.enabled);
    let start = Instant::now();
    // Between quanta: consoles and trace out; a failed write stops the run.
    let mut pump = |m: &mut Monitor| -> Result<(), OutputError> {
        for v in 0..m.vms.len() {
            let out = m.take_console(v);
            if !out.is_empty() {
                progress.clear();
                consoles.write(v, &out)?;
            }
        }
        if let Some(w) = sink.as_mut() {
            // A failure is kept by the sink and taken just below.
            let _ = m.trace.drain_to(w);
        }
        trace_check.as_ref().map_or(Ok(()), TraceCheck::take)?;
        progress.tick(m.now(), || {
            m.vm_stats().iter().map(|st| st.guest_insns).sum::<u64>()
        });
        Ok(())
    };
    // `None`: Ctrl-C.
    let exit = match gdb {
        Some((port, wait, name)) => {
            let vm = match &name {
                Some(n) => m.vm_named(n).ok_or_else(|| {
                    anyhow!(
                        "--gdb-vm {n:?}: no such VM (the VMs are named with --vm IMAGE,name=NAME)"
                    )
                })?,
                None => 0,
            };
            Some(under_gdb(&mut pump, |hook| {
                crate::gdb::serve_monitor(&mut m, vm, port, wait, hook)
            })?)
        }
        None => drive(&mut m, Monitor::run_quantum, &mut pump)?,
    };
    progress.clear();
    consoles.finish()?;
    let secs = start.elapsed().as_secs_f64();
    if let Some(w) = sink.as_mut() {
        let _ = w.flush();
    }
    if let Some(check) = &trace_check {
        check.take()?;
    }
    let mut w = std::io::stdout().lock();
    summary(&mut w, &m, secs).map_err(OutputError::stdout)?;
    if s.stats == Some(true) {
        write!(w, "{}", m.stats_report()).map_err(OutputError::stdout)?;
    }
    if let Some(fmt) = dump {
        crate::report::dump_monitor(&mut w, &m, fmt).map_err(OutputError::stdout)?;
    }
    Ok(monitor_ending(&m, exit))
}

/// How the monitor's run ended (`None`: Ctrl-C).
fn monitor_ending(m: &Monitor, exit: Option<MonitorExit>) -> Ending {
    match exit {
        Some(MonitorExit::CycleLimit { cycles }) => Ending::CycleLimit { cycles },
        Some(MonitorExit::AllEnded | MonitorExit::Debug { .. }) => Ending::Vms {
            failure: m
                .vms
                .iter()
                .find(|v| v.end != Some(VmEnd::Halted(0)))
                .map(|v| format!("{} {}", v.name, how_it_ended(v.end.as_ref()))),
        },
        None => Ending::Interrupted {
            cycles: m.now(),
            positions: crate::report::monitor_positions(m),
        },
    }
}

/// How a VM ended, as the summary and the exit line say it.
fn how_it_ended(end: Option<&VmEnd>) -> String {
    match end {
        Some(VmEnd::Halted(s)) => format!("halted with status {s}"),
        Some(VmEnd::Stopped(why)) => format!("stopped by the monitor: {why}"),
        None => "still running".to_string(),
    }
}

/// The lines every monitor run ends with.
fn summary(w: &mut impl Write, m: &Monitor, secs: f64) -> std::io::Result<()> {
    writeln!(w, "--- summary ---")?;
    let stats = m.vm_stats();
    for (v, st) in m.vms.iter().zip(&stats) {
        writeln!(
            w,
            "{}: {}; {} guest instructions, {} exits, monitor {:.1}% of its cycles",
            v.name,
            how_it_ended(v.end.as_ref()),
            st.guest_insns,
            st.total_exits(),
            st.monitor_share() * 100.0
        )?;
    }
    if let Some((batches, split)) = m.parallel_batches().filter(|b| b.1 > 0) {
        writeln!(
            w,
            "parallel: {split} of {batches} batches ran a VM's CPUs on more than one host thread"
        )?;
    }
    if let Some((quanta, waits)) = m.parallel_part_waits().filter(|w| w.0 > 0) {
        writeln!(
            w,
            "parallel: split VMs' threads waited for each other before {waits} of {quanta} quanta"
        )?;
    }
    let instructions: u64 = stats.iter().map(|s| s.guest_insns).sum();
    writeln!(
        w,
        "{} physical CPU(s), {} simulated cycles, {} guest instructions, {:.1} host MIPS",
        m.machine.cpus.len(),
        m.now(),
        instructions,
        instructions as f64 / secs.max(1e-9) / 1e6
    )
}
