//! `disco run`: wiring the command line to the machine or the monitor.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail};
use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd};
use sim::loader::{self, Image, Symbols};
use sim::{Exit, Machine};

use sim::config::{ConfigError, MachineSetup, Settings};
use sim::trace::{Categories, TextTracer};

use crate::cli::{parse_vm_spec, DumpFormat, RunArgs, VmEntry};

/// Process exit statuses (documented in docs/guide.md).
pub(crate) const EXIT_BAD_INPUT: i32 = 2;
pub(crate) const EXIT_CYCLE_LIMIT: i32 = 3;
pub(crate) const EXIT_IDLE: i32 = 4;

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
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    loader::load(&bytes, ram).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Runs and returns the process exit status.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<i32> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
            Settings::from_toml(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Settings::default(),
    };
    let from_file = |key: &str| {
        args.config
            .as_ref()
            .map_or(String::new(), |p| format!("{}: {key}", p.display()))
    };
    let mut specs = args.vms.clone();
    if specs.is_empty() {
        for (i, table) in file.vm.iter().enumerate() {
            let entry: VmEntry = table.clone().try_into().map_err(|e: toml::de::Error| {
                anyhow!("{}[{i}]: {}", from_file("vm"), e.message())
            })?;
            specs.push(
                entry
                    .spec()
                    .map_err(|e| anyhow!("{}[{i}].mem: {e}", from_file("vm")))?,
            );
        }
    }
    let s = args.settings().over(file);
    let bad = |e: ConfigError| setting_error(&args, e);
    if args.native && !specs.is_empty() {
        bail!("--native runs one image on the bare machine; it cannot be combined with --vm");
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
    if let Some(image) = s.image.clone() {
        let setup = s.machine().map_err(bad)?;
        return run_native(&args, &s, setup, &image, categories, dump);
    }
    if specs.is_empty() {
        // The demo: two VMs of the teaching kernel on a two-CPU machine.
        let img = default_image();
        specs = vec![
            format!("{},name=vm0", img.display()),
            format!("{},name=vm1", img.display()),
        ];
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
        &s,
        (pcpus, quantum, max_cycles),
        &specs,
        categories,
        dump,
        gdb,
    )
}

/// A bad setting, named as the user gave it: the flag, or the key in the
/// config file.
fn setting_error(args: &RunArgs, e: ConfigError) -> anyhow::Error {
    let ConfigError::Invalid { key, problem } = &e else {
        return anyhow!("{e}");
    };
    let flag = match *key {
        "cpus" => args.cpus.is_some(),
        "mem" => args.mem.is_some(),
        "quantum" => args.quantum.is_some(),
        "max_cycles" => args.max_cycles.is_some(),
        _ => false,
    };
    match &args.config {
        _ if flag => anyhow!("--{}: {problem}", key.replace('_', "-")),
        Some(path) => anyhow!("{}: {key}: {problem}", path.display()),
        None => anyhow!("{e}"),
    }
}

fn trace_sink(s: &Settings) -> anyhow::Result<Box<dyn Write>> {
    Ok(match &s.trace_file {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| anyhow!("{}: cannot create: {e}", p.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    })
}

/// Standard input, read on a thread so the guest's getchar never blocks
/// the machine; bytes reach the console at the next quantum boundary.
fn stdin_bytes() -> std::sync::mpsc::Receiver<Vec<u8>> {
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

/// A disk image file's contents, read once.
fn read_disk(path: &Path) -> anyhow::Result<Arc<[u8]>> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow!("{}: cannot read the disk image: {e}", path.display()))?;
    Ok(bytes.into())
}

fn run_native(
    args: &RunArgs,
    s: &Settings,
    setup: MachineSetup,
    image: &Path,
    categories: Categories,
    dump: Option<DumpFormat>,
) -> anyhow::Result<i32> {
    let ram = setup.config.ram_bytes;
    let (img, symbols) = load_image(image, ram)?;
    let disk = s.disk.as_deref().map(read_disk).transpose()?;
    let mut m = setup.build(disk);
    if !img.load_into(&mut m) {
        bail!("{}: does not fit in {ram} bytes of RAM", image.display());
    }
    if !categories.is_empty() {
        m.observe(Box::new(TextTracer::new(
            categories,
            symbols.clone(),
            trace_sink(s)?,
        )));
    }
    let start = Instant::now();
    let stdout = std::io::stdout();
    let input = stdin_bytes();
    let mut console = |m: &mut Machine| {
        while let Ok(bytes) = input.try_recv() {
            m.bus.board.console.push_input(&bytes);
        }
        let out = m.take_console();
        if !out.is_empty() {
            let mut lock = stdout.lock();
            let _ = lock.write_all(&out);
            let _ = lock.flush();
        }
    };
    let exit = match args.gdb {
        Some(port) => crate::gdb::serve(&mut m, port, args.gdb_wait, &mut console)?,
        None => loop {
            console(&mut m);
            let step = m.run_quantum();
            console(&mut m);
            if let Some(e) = step {
                break e;
            }
        },
    };
    let secs = start.elapsed().as_secs_f64();
    m.flush_observers();
    let status = match exit {
        Exit::Halted { status } => (status & 0xFF) as i32,
        Exit::CycleLimit { cycles } => {
            eprintln!(
                "disco: stopped after {cycles} cycles (--max-cycles); the guest had not halted"
            );
            EXIT_CYCLE_LIMIT
        }
        Exit::Idle | Exit::Debug { .. } => {
            eprintln!("disco: every CPU is parked, paused or stopped and nothing can wake them");
            EXIT_IDLE
        }
    };
    if s.disk_write == Some(true) && m.bus.board.disk.modified() {
        if let (Some(path), Some(contents)) = (&s.disk, m.bus.board.disk.contents()) {
            std::fs::write(path, &contents).map_err(|e| {
                anyhow!("{}: cannot write the disk image back: {e}", path.display())
            })?;
        }
    }
    if s.stats == Some(true) {
        crate::report::native_stats(&m, secs);
    }
    if let Some(fmt) = dump {
        crate::report::dump_native(&m, fmt);
    }
    Ok(status)
}

fn run_monitor(
    s: &Settings,
    (pcpus, quantum, max_cycles): (usize, u64, Option<u64>),
    specs: &[String],
    categories: Categories,
    dump: Option<DumpFormat>,
    gdb: Option<(u16, bool, Option<String>)>,
) -> anyhow::Result<i32> {
    let disk_irq_latency = s.disk_irq;
    let mut vms = Vec::new();
    let mut console_files = Vec::new();
    let mut console_paths: Vec<PathBuf> = Vec::new();
    // One copy of each disk file, shared by the VMs that name it.
    let mut disks: Vec<(PathBuf, Arc<[u8]>)> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let spec = parse_vm_spec(s).map_err(|e| anyhow!("{e}"))?;
        let mem = spec.mem.unwrap_or(32 << 20);
        let (img, _) = load_image(&spec.image, mem)?;
        let disk = match spec.disk {
            Some(path) => Some(match disks.iter().find(|(p, _)| *p == path) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = read_disk(&path)?;
                    disks.push((path, d.clone()));
                    d
                }
            }),
            None => None,
        };
        if let Some(path) = &spec.console {
            if console_paths.contains(path) {
                bail!(
                    "--vm {s:?}: console file {} is already another VM's",
                    path.display()
                );
            }
            console_paths.push(path.clone());
        }
        console_files.push(match &spec.console {
            Some(path) => {
                Some(std::fs::File::create(path).map_err(|e| {
                    anyhow!("{}: cannot create the console file: {e}", path.display())
                })?)
            }
            None => None,
        });
        vms.push(VmConfig {
            name: spec.name.unwrap_or_else(|| format!("vm{i}")),
            image: img,
            mem_bytes: mem,
            vcpus: spec.cpus.unwrap_or(1),
            disk,
            disk_irq_latency,
        });
    }
    let mut m = Monitor::new(MonitorConfig {
        pcpus,
        quantum,
        max_cycles,
        vms,
        tier: s.tier().map_err(|e| anyhow!("{e}"))?,
        ..MonitorConfig::default()
    })
    .map_err(|e| anyhow!("{e}"))?;
    m.trace.enabled = !categories.is_empty();
    m.trace.engine_insns = categories.insn;
    let mut sink = if m.trace.enabled {
        Some(trace_sink(s)?)
    } else {
        None
    };
    let mut consoles = crate::report::Prefixer::new(
        m.vms.iter().map(|v| v.name.clone()).collect(),
        console_files,
    );
    let start = Instant::now();
    let mut pump = |m: &mut Monitor| {
        for v in 0..m.vms.len() {
            let out = m.take_console(v);
            consoles.write(v, &out);
        }
        if let Some(w) = sink.as_mut() {
            for (cycle, line) in m.trace.lines.drain(..) {
                writeln!(w, "{cycle:>12} {line}").ok();
            }
        }
    };
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
            crate::gdb::serve_monitor(&mut m, vm, port, wait, &mut pump)?
        }
        None => loop {
            let step = m.run_quantum();
            pump(&mut m);
            if let Some(e) = step {
                break e;
            }
        },
    };
    consoles.finish();
    let secs = start.elapsed().as_secs_f64();
    if let Some(w) = sink.as_mut() {
        w.flush().ok();
    }
    println!("--- summary ---");
    let stats = m.vm_stats();
    for (v, st) in m.vms.iter().zip(&stats) {
        let how = match &v.end {
            Some(VmEnd::Halted(s)) => format!("halted with status {s}"),
            Some(VmEnd::Stopped(why)) => format!("stopped by the monitor: {why}"),
            None => "still running".to_string(),
        };
        println!(
            "{}: {how}; {} guest instructions, {} exits, monitor {:.1}% of its cycles",
            v.name,
            st.guest_insns,
            st.total_exits(),
            st.monitor_share() * 100.0
        );
    }
    let instructions: u64 = stats.iter().map(|s| s.guest_insns).sum();
    println!(
        "{} physical CPU(s), {} simulated cycles, {} guest instructions, {:.1} host MIPS",
        pcpus,
        m.now(),
        instructions,
        instructions as f64 / secs.max(1e-9) / 1e6
    );
    if s.stats == Some(true) {
        print!("{}", m.stats_report());
    }
    if let Some(fmt) = dump {
        crate::report::dump_monitor(&m, fmt);
    }
    Ok(match exit {
        MonitorExit::CycleLimit { cycles } => {
            eprintln!("disco: stopped after {cycles} cycles (--max-cycles)");
            EXIT_CYCLE_LIMIT
        }
        MonitorExit::AllEnded | MonitorExit::Debug { .. } => {
            if m.vms.iter().all(|v| v.end == Some(VmEnd::Halted(0))) {
                0
            } else {
                1
            }
        }
    })
}
