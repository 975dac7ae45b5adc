//! The target description GDB reads with `qXfer:features:read:target.xml`:
//! a 64-bit MIPS (the R4000 is MIPS III) in GDB's standard register
//! numbering, with the `org.gnu.gdb.mips.cpu`, `.cp0` and `.fpu` features
//! GDB's MIPS target requires. There is no FPU; its registers read as 0 but
//! must be described, or GDB rejects the description.

use std::fmt::Write as _;

/// The whole description (one document, no `xi:include`).
pub(super) fn target_xml() -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n\
         <architecture>mips</architecture>\n<feature name=\"org.gnu.gdb.mips.cpu\">\n",
    );
    for r in 0..32 {
        let _ = writeln!(s, "<reg name=\"r{r}\" bitsize=\"64\" regnum=\"{r}\"/>");
    }
    s.push_str(
        "<reg name=\"lo\" bitsize=\"64\" regnum=\"33\"/>\n\
         <reg name=\"hi\" bitsize=\"64\" regnum=\"34\"/>\n\
         <reg name=\"pc\" bitsize=\"64\" regnum=\"37\"/>\n</feature>\n\
         <feature name=\"org.gnu.gdb.mips.cp0\">\n\
         <reg name=\"status\" bitsize=\"64\" regnum=\"32\"/>\n\
         <reg name=\"badvaddr\" bitsize=\"64\" regnum=\"35\"/>\n\
         <reg name=\"cause\" bitsize=\"64\" regnum=\"36\"/>\n</feature>\n\
         <feature name=\"org.gnu.gdb.mips.fpu\">\n",
    );
    for f in 0..32 {
        let _ = writeln!(
            s,
            "<reg name=\"f{f}\" bitsize=\"64\" type=\"ieee_double\" regnum=\"{}\"/>",
            38 + f
        );
    }
    s.push_str(
        "<reg name=\"fcsr\" bitsize=\"64\" group=\"float\" regnum=\"70\"/>\n\
         <reg name=\"fir\" bitsize=\"64\" group=\"float\" regnum=\"71\"/>\n</feature>\n</target>\n",
    );
    s
}

/// A `qXfer` read of `[offset, offset+len)` of `doc`: `m` and the data if
/// more follows, `l` and the data for the last part.
pub(super) fn xfer(doc: &str, offset: usize, len: usize) -> Vec<u8> {
    let bytes = doc.as_bytes();
    let start = offset.min(bytes.len());
    let end = start.saturating_add(len).min(bytes.len());
    let mut out = vec![if end < bytes.len() { b'm' } else { b'l' }];
    out.extend_from_slice(bytes.get(start..end).unwrap_or(&[]));
    out
}
