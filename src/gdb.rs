//! `--gdb PORT`: wiring only. The stub is `sim::gdb` (protocol and the
//! bare-machine target) and `monitor::gdb` (one VM under the monitor).

use anyhow::{anyhow, Context};
use monitor::gdb::MonitorTarget;
use monitor::{Monitor, MonitorExit};
use sim::gdb::{End, MachineTarget};
use sim::{Exit, Machine};

/// Waits for GDB on `port` (if `wait`, before the first instruction;
/// otherwise runs meanwhile), then serves it until it detaches, kills the
/// machine or the guest ends. Returns how the machine ended.
pub(crate) fn serve(
    m: &mut Machine,
    port: u16,
    wait: bool,
    console: &mut dyn FnMut(&mut Machine),
) -> anyhow::Result<Exit> {
    let listener = sim::gdb::listen(port)
        .with_context(|| format!("--gdb: cannot listen on 127.0.0.1:{port}"))?;
    // `--gdb 0` asks the system for a free port: say which.
    let port = listener.local_addr().map_or(port, |a| a.port());
    crate::out::say(&format!("disco: waiting for GDB on 127.0.0.1:{port}"));
    let mut ended = None;
    let stream = sim::gdb::accept(&listener, wait, || {
        let e = m.run_quantum();
        console(m);
        ended = e;
        e.is_none()
    })
    .map_err(|e| anyhow!("--gdb: {e}"))?;
    let Some(stream) = stream else {
        return Ok(ended.unwrap_or(Exit::Idle));
    };
    let (end, exit) = {
        let mut target = MachineTarget::new(m).with_hook(console);
        let end = sim::gdb::serve(stream, &mut target).map_err(|e| anyhow!("--gdb: {e}"))?;
        (end, target.exit)
    };
    Ok(match end {
        End::Killed => Exit::Halted { status: 0 },
        End::Exited(_) => exit.unwrap_or(Exit::Idle),
        End::Detached | End::Disconnected => match exit {
            Some(e) => e,
            // Run on without the debugger.
            None => loop {
                let e = m.run_quantum();
                console(m);
                if let Some(e) = e {
                    break e;
                }
            },
        },
    })
}

/// `--gdb` under the monitor: GDB debugs VM `vm` (its VCPUs are the
/// threads) while every VM runs. Returns how the monitor's run ended.
pub(crate) fn serve_monitor(
    m: &mut Monitor,
    vm: usize,
    port: u16,
    wait: bool,
    pump: &mut dyn FnMut(&mut Monitor),
) -> anyhow::Result<MonitorExit> {
    let listener = sim::gdb::listen(port)
        .with_context(|| format!("--gdb: cannot listen on 127.0.0.1:{port}"))?;
    let port = listener.local_addr().map_or(port, |a| a.port());
    let name = m.vms.get(vm).map_or("?", |v| v.name.as_str());
    crate::out::say(&format!(
        "disco: waiting for GDB on 127.0.0.1:{port} (VM {name})"
    ));
    let mut ended = None;
    let stream = sim::gdb::accept(&listener, wait, || {
        let e = m.run_quantum();
        pump(m);
        ended = e;
        e.is_none()
    })
    .map_err(|e| anyhow!("--gdb: {e}"))?;
    let Some(stream) = stream else {
        return Ok(ended.unwrap_or(MonitorExit::AllEnded));
    };
    let (end, exit) = {
        let mut target = MonitorTarget::new(m, vm).with_hook(pump);
        let end = sim::gdb::serve(stream, &mut target).map_err(|e| anyhow!("--gdb: {e}"))?;
        (end, target.exit)
    };
    if end == End::Killed {
        return Ok(MonitorExit::AllEnded);
    }
    // Detached, disconnected, or the debugged VM ended: the others run on.
    Ok(match exit {
        Some(e) if !matches!(e, MonitorExit::Debug { .. }) => e,
        _ => loop {
            let e = m.run_quantum();
            pump(m);
            match e {
                Some(MonitorExit::Debug { .. }) | None => {}
                Some(e) => break e,
            }
        },
    })
}
