//! A cursor over an event's text, for the readers of `super`.

/// A cursor over an event's text.
pub(super) struct Scan<'a>(pub(super) &'a str);

impl<'a> Scan<'a> {
    /// Consumes `lit` if the text goes on with it.
    pub(super) fn lit(&mut self, lit: &str) -> bool {
        match self.0.strip_prefix(lit) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// The text up to `end`, consuming both.
    pub(super) fn until(&mut self, end: &str) -> Option<&'a str> {
        let (head, rest) = self.0.split_once(end)?;
        self.0 = rest;
        Some(head)
    }

    fn token(&mut self, ok: impl Fn(char) -> bool) -> &'a str {
        let n = self.0.find(|c: char| !ok(c)).unwrap_or(self.0.len());
        let (tok, rest) = self.0.split_at(n);
        self.0 = rest;
        tok
    }

    /// A decimal number (signed types take a leading `-`).
    pub(super) fn dec<T: std::str::FromStr>(&mut self) -> Option<T> {
        let neg = self.lit("-");
        let digits = self.token(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return None;
        }
        let text = if neg {
            format!("-{digits}")
        } else {
            digits.to_string()
        };
        text.parse().ok()
    }

    /// `0x…`.
    pub(super) fn hex(&mut self) -> Option<u64> {
        self.lit("0x").then_some(())?;
        let digits = self.token(|c| c.is_ascii_hexdigit());
        u64::from_str_radix(digits, 16).ok()
    }

    pub(super) fn hex32(&mut self) -> Option<u32> {
        self.hex().and_then(|v| u32::try_from(v).ok())
    }

    pub(super) fn whole_hex32(&mut self) -> Option<u32> {
        let v = self.hex32()?;
        self.done().then_some(v)
    }

    pub(super) fn read_or_write(&mut self) -> Option<bool> {
        if self.lit("write") {
            Some(true)
        } else if self.lit("read") {
            Some(false)
        } else {
            None
        }
    }

    /// An optional `, BadVAddr VA`.
    pub(super) fn badvaddr(&mut self) -> Option<Option<u32>> {
        if self.lit(", BadVAddr ") {
            self.hex32().map(Some)
        } else {
            Some(None)
        }
    }

    pub(super) fn done(&self) -> bool {
        self.0.is_empty()
    }
}
