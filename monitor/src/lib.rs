//! disco-monitor: a Disco-style virtual machine monitor (issue 5).
