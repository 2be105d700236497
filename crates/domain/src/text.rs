//! Messages that quote a limit, built when compiling: `between(1, QUANTITY_MAX)` is "must be
//! between 1 and 100" without the number ever being retyped, and the message is a
//! `&'static str`, so an `InvalidValue` stays two words and a value's `parse` on the hot path
//! moves no more bytes than before.

/// A string of at most `N` bytes assembled in a `static`'s initializer.
pub(crate) struct ConstText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> ConstText<N> {
    pub(crate) const fn new() -> Self {
        ConstText { bytes: [0; N], len: 0 }
    }

    /// Appends `s` (a compile error if it does not fit).
    pub(crate) const fn str(mut self, s: &str) -> Self {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            self.bytes[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// Appends `v` in decimal.
    pub(crate) const fn num(mut self, mut v: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            self.bytes[self.len] = digits[n];
            self.len += 1;
        }
        self
    }

    pub(crate) const fn as_str(&self) -> &str {
        match std::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => panic!("ConstText holds only whole UTF-8 strings"),
        }
    }
}

/// The message length every limit message here fits in.
pub(crate) const TEXT_MAX_BYTES: usize = 64;

pub(crate) type Text = ConstText<TEXT_MAX_BYTES>;

/// "must be between `lo` and `hi`".
pub(crate) const fn between(lo: u64, hi: u64) -> Text {
    Text::new().str("must be between ").num(lo).str(" and ").num(hi)
}

/// "at most `max` `what`" ("at most 16 lines per hold").
pub(crate) const fn at_most(max: u64, what: &str) -> Text {
    Text::new().str("at most ").num(max).str(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_quote_the_numbers() {
        static B: Text = between(0, 1_000_000_000_000);
        static A: Text = at_most(18_446_744_073_709_551_615, " bytes");
        assert_eq!(B.as_str(), "must be between 0 and 1000000000000");
        assert_eq!(A.as_str(), "at most 18446744073709551615 bytes");
        assert_eq!(at_most(0, "").as_str(), "at most 0");
    }
}
