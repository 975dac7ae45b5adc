//! A GDB remote serial protocol stub, System/161 style: the front end
//! (`packet` framing, `protocol` commands) knows nothing of MIPS
//! beyond register numbers, and talks to a back end through the [`Target`]
//! trait. [`MachineTarget`] debugs the bare machine; the monitor provides a
//! target for one VM (`monitor::gdb`).
//!
//! Breakpoints are simulator PC breakpoints ([`crate::DebugControl`]) and
//! watchpoints are checked on every load and store, both only in the
//! machine's traced loop, which the debugger turns on; the untraced fast
//! loop never looks at them. Stopping between two instructions does not
//! change simulated time: the stopped quantum resumes where it stopped.
//!
//! See docs/gdb.md.

pub mod machine;
mod packet;
mod protocol;
pub mod target;
mod xml;

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

pub use machine::MachineTarget;
pub use protocol::{serve, End};
pub use target::{Point, PointKind, Resume, Stop, Target};

/// Listens on 127.0.0.1:`port` (only the local host may debug).
pub fn listen(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
}

/// Waits for GDB to connect. With `wait`, blocks before anything runs;
/// otherwise calls `run` (one quantum of the guest) until a client
/// arrives, and returns `None` if `run` says the guest ended first.
pub fn accept(
    listener: &TcpListener,
    wait: bool,
    mut run: impl FnMut() -> bool,
) -> std::io::Result<Option<TcpStream>> {
    if wait {
        listener.set_nonblocking(false)?;
        return listener.accept().map(|(s, _)| Some(s));
    }
    listener.set_nonblocking(true)?;
    let mut idle = 0u32;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(Some(s));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !run() {
                    return Ok(None);
                }
                idle = idle.wrapping_add(1);
                if idle & 63 == 0 {
                    // Let a connecting client in without burning a core in accept.
                    std::thread::sleep(Duration::from_micros(10));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
