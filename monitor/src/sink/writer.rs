//! A JSON writer straight into a byte buffer, for the alert hot path: no value tree, no
//! intermediate strings. Keys come out in the order they are written.
//!
//! Strings are escaped as serde_json escapes them (quote, backslash and control characters),
//! so every line stays one line. Bytes from the kernel go through [`JsonWriter::text`]:
//! valid UTF-8 is written as is, anything else percent-encoded and its field recorded for
//! `encoding.percent` (see [`percent_encode_invalid`]).

use std::io::Write as _;

/// A schema key as [`JsonWriter::key`] takes it: `key!("name")` is `,"name":`, made at
/// compile time (the writer drops the comma where none is due).
macro_rules! key {
    ($k:literal) => {
        concat!(",\"", $k, "\":")
    };
}
pub(crate) use key;

pub struct JsonWriter<'a> {
    buf: &'a mut Vec<u8>,
    /// Whether the next value or key follows a sibling and needs a comma.
    comma: bool,
    /// Fields whose text was percent-encoded (dotted paths such as `process.args.2`).
    pub encoded: Vec<String>,
}

impl<'a> JsonWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> JsonWriter<'a> {
        JsonWriter { buf, comma: false, encoded: Vec::new() }
    }

    fn sep(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    /// An object or array starts: its first member needs no comma.
    fn begin(&mut self, bracket: u8) -> &mut Self {
        self.sep();
        self.buf.push(bracket);
        self.comma = false;
        self
    }

    /// An object or array ends: it is a value, and what follows needs a comma.
    fn end(&mut self, bracket: u8) -> &mut Self {
        self.buf.push(bracket);
        self.comma = true;
        self
    }

    pub fn open(&mut self) -> &mut Self {
        self.begin(b'{')
    }

    pub fn close(&mut self) -> &mut Self {
        self.end(b'}')
    }

    pub fn open_array(&mut self) -> &mut Self {
        self.begin(b'[')
    }

    pub fn close_array(&mut self) -> &mut Self {
        self.end(b']')
    }

    /// A key of the alert schema, given as [`key!`] makes it; the value written next
    /// belongs to it. Schema keys need no escape: the key is one copy, comma included.
    #[inline(always)]
    pub fn key(&mut self, k: &'static str) -> &mut Self {
        debug_assert!(
            k.starts_with(",\"")
                && k.ends_with("\":")
                && first_to_escape(&k.as_bytes()[2..k.len() - 2]).is_none(),
            "{k}"
        );
        let k = if self.comma { k } else { &k[1..] };
        self.buf.extend_from_slice(k.as_bytes());
        self.comma = false;
        self
    }

    /// A key from data (decoded request settings), escaped.
    pub fn key_text(&mut self, k: &str) -> &mut Self {
        self.sep();
        escape_into(self.buf, k);
        self.buf.push(b':');
        self.comma = false;
        self
    }

    /// `"k":{` — a nested object under `k` (a [`key!`]).
    #[inline(always)]
    pub fn object(&mut self, k: &'static str) -> &mut Self {
        self.key(k).open()
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        escape_into(self.buf, s);
        self.comma = true;
        self
    }

    /// A string of the schema (`"alert"`, an action or syscall name): written as it is, for
    /// it is ours and has nothing to escape.
    #[inline(always)]
    pub fn lit(&mut self, s: &'static str) -> &mut Self {
        debug_assert!(first_to_escape(s.as_bytes()).is_none(), "{s}");
        self.sep();
        self.buf.reserve(s.len() + 2);
        self.buf.push(b'"');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    /// `"<s><sep><n>"`: a rule's `file:line` without formatting it first.
    pub fn str_and_number(&mut self, s: &str, sep: u8, n: u64) -> &mut Self {
        self.sep();
        escape_into(self.buf, s);
        self.buf.pop(); // the closing quote
        self.buf.push(sep);
        push_digits(self.buf, n, 10);
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.sep();
        push_digits(self.buf, n, 10);
        self.comma = true;
        self
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        self.sep();
        if n < 0 {
            self.buf.push(b'-');
        }
        push_digits(self.buf, n.unsigned_abs(), 10);
        self.comma = true;
        self
    }

    /// A number as a JSON string in base 10, 16 or 8, after `prefix` (`"0x"`, `"0o"`, `""`):
    /// ids (`"1000"`), syscall arguments (`"0x7ffd…"`), modes.
    pub fn num_str(&mut self, prefix: &str, n: u64, radix: u64) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        self.buf.extend_from_slice(prefix.as_bytes());
        push_digits(self.buf, n, radix);
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { b"true" } else { b"false" })
    }

    pub fn null(&mut self) -> &mut Self {
        self.raw(b"null")
    }

    /// A string made by `fmt` (numbers in hex or octal), written without a temporary.
    pub fn fmt(&mut self, args: std::fmt::Arguments) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        let start = self.buf.len();
        let _ = self.buf.write_fmt(args);
        // Formatting numbers never yields characters that need escaping; anything else does.
        if self.buf[start..].iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
            let s = String::from_utf8_lossy(&self.buf[start..]).into_owned();
            self.buf.truncate(start - 1);
            escape_into(self.buf, &s);
        } else {
            self.buf.push(b'"');
        }
        self.comma = true;
        self
    }

    /// Bytes from the kernel, losslessly: see the module doc. `path` names the field.
    pub fn text(&mut self, b: &[u8], path: impl FnOnce() -> String) -> &mut Self {
        if is_plain_ascii(b) {
            // Most text: valid UTF-8 with nothing to escape, written in one copy.
            self.sep();
            self.buf.reserve(b.len() + 2);
            self.buf.push(b'"');
            self.buf.extend_from_slice(b);
            self.buf.push(b'"');
            self.comma = true;
            return self;
        }
        match std::str::from_utf8(b) {
            Ok(s) => self.str(s),
            Err(_) => {
                self.encoded.push(path());
                let s = percent_encode_invalid(b);
                self.str(&s)
            }
        }
    }

    pub fn opt_text(&mut self, b: Option<&[u8]>, path: impl FnOnce() -> String) -> &mut Self {
        match b {
            Some(b) => self.text(b, path),
            None => self.null(),
        }
    }

    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    /// JSON written before by a `JsonWriter`: one value, or (`members`) the members of an
    /// object, `"a":1,"b":2`, spliced into the object being written.
    pub fn raw(&mut self, json: &[u8]) -> &mut Self {
        if !json.is_empty() {
            self.sep();
            self.buf.extend_from_slice(json);
            self.comma = true;
        }
        self
    }

    /// A value built elsewhere (decoded Docker settings), through serde_json.
    pub fn value(&mut self, v: &serde_json::Value) -> &mut Self {
        self.sep();
        let _ = serde_json::to_writer(&mut *self.buf, v);
        self.comma = true;
        self
    }

    /// `"encoding":{"percent":[…]}` when some text was encoded.
    pub fn encoding(&mut self) -> &mut Self {
        if !self.encoded.is_empty() {
            let fields = std::mem::take(&mut self.encoded);
            self.object(key!("encoding")).key(key!("percent")).open_array();
            for f in &fields {
                self.str(f);
            }
            self.close_array().close();
        }
        self
    }
}

/// `n` in base 10, 16 or 8 (lower-case digits), without a prefix.
fn push_digits(buf: &mut Vec<u8>, n: u64, radix: u64) {
    match radix {
        16 => push_pow2_digits::<4>(buf, n),
        8 => push_pow2_digits::<3>(buf, n),
        _ => push_decimal(buf, n),
    }
}

/// Base 10, through `itoa` (no formatter, no allocation).
fn push_decimal(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A power-of-two base (`BITS` bits per digit): shifts and masks only (`itoa` writes base 10
/// only).
fn push_pow2_digits<const BITS: u32>(buf: &mut Vec<u8>, mut n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 22];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = DIGITS[(n & ((1 << BITS) - 1)) as usize];
        n >>= BITS;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Which bytes need an escape in a JSON string: `"`, `\\` and control characters.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Whether `b` is ASCII without a byte that needs an escape (then it is valid UTF-8 and
/// its JSON string is itself in quotes). Eight bytes at a time, like `first_to_escape`.
fn is_plain_ascii(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().unwrap());
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        // A borrow can only raise a flag after a byte that raised one itself.
        if (x & HIGHS)
            | (x.wrapping_sub(ONES * 0x20) & HIGHS)
            | zero(x ^ (ONES * b'"' as u64))
            | zero(x ^ (ONES * b'\\' as u64))
            != 0
        {
            return false;
        }
    }
    chunks.remainder().iter().all(|&c| c < 0x80 && !NEEDS_ESCAPE[c as usize])
}

/// Index of the first byte that needs an escape. Eight bytes at a time: most strings need
/// none, and this is the hot loop of alert output.
fn first_to_escape(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        // A zero byte in x ^ c marks a byte equal to c; x - 0x20.. borrows where a byte < 0x20.
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let hit = (x.wrapping_sub(ONES * 0x20) & !x & HIGHS)
            | zero(x ^ (ONES * b'"' as u64))
            | zero(x ^ (ONES * b'\\' as u64));
        if hit != 0 {
            // The flags can be set by a borrow past the first match, never before it.
            return b[i..i + 8]
                .iter()
                .position(|&c| NEEDS_ESCAPE[c as usize])
                .map(|o| i + o)
                .or_else(|| first_to_escape(&b[i + 8..]).map(|o| i + 8 + o));
        }
        i += 8;
    }
    b[i..].iter().position(|&c| NEEDS_ESCAPE[c as usize]).map(|o| i + o)
}

/// `s` as a JSON string literal, escaped like serde_json: `"`, `\` and control characters.
pub fn escape_into(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    let mut start = 0;
    while let Some(off) = first_to_escape(&bytes[start..]) {
        let i = start + off;
        buf.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            _ => buf.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Invalid UTF-8 bytes and `%` as `%XX`; valid sequences unchanged. A consumer restores the
/// exact bytes by decoding every `%XX` of a field listed in `encoding.percent`.
pub fn percent_encode_invalid(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn invalid_utf8_round_trips_and_valid_text_is_untouched() {
        for input in [
            &b"plain %41 text"[..],
            b"\xff\xfe",
            b"caf\xc3\xa9 \xc3 50% \x00\n\"q\"",
            b"%",
            b"\xed\xa0\x80",
        ] {
            let mut buf = Vec::new();
            let mut w = JsonWriter::new(&mut buf);
            w.text(input, || "f".into());
            let encoded = std::mem::take(&mut w.encoded);
            assert!(!buf.contains(&b'\n'), "one line");
            let v: Value = serde_json::from_slice(&buf).unwrap();
            let s = v.as_str().unwrap();
            if std::str::from_utf8(input).is_ok() {
                assert_eq!(s.as_bytes(), input);
                assert!(encoded.is_empty());
            } else {
                assert_eq!(
                    percent_encoding::percent_decode_str(s).collect::<Vec<u8>>(),
                    input,
                    "{s}"
                );
                assert_eq!(encoded, vec!["f"]);
            }
        }
    }

    #[test]
    fn escaping_matches_serde_json_for_every_ascii_character_and_beyond() {
        let mut s: String = (0u8..=0x7f).map(char::from).collect();
        s.push_str("é \u{2028} \u{10ffff} \\\" end");
        let mut buf = Vec::new();
        escape_into(&mut buf, &s);
        assert_eq!(String::from_utf8(buf).unwrap(), serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn the_eight_byte_scan_finds_the_first_byte_to_escape_anywhere() {
        let specials = [b'"', b'\\', 0u8, 0x1f, b'\n'];
        let harmless = [b'a', 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b']', 0x5d, 0x21, 0x23];
        with_one_of(&specials, &harmless, |v, _| {
            let want = v.iter().position(|&c| NEEDS_ESCAPE[c as usize]);
            assert_eq!(first_to_escape(v), want, "{v:?}");
        });
    }

    /// `check(v, placed)` for every text of 0 to 39 `harmless` bytes, with one byte of
    /// `specials` at each position (`placed`) or at none: the scans' eight-byte words see
    /// it in every lane and in the tail.
    fn with_one_of(specials: &[u8], harmless: &[u8], mut check: impl FnMut(&[u8], bool)) {
        for len in 0..40 {
            for at in 0..=len {
                for (k, &s) in specials.iter().enumerate() {
                    let mut v: Vec<u8> =
                        (0..len).map(|i| harmless[(i + k) % harmless.len()]).collect();
                    if at < len {
                        v[at] = s;
                    }
                    check(&v, at < len);
                }
            }
        }
    }

    #[test]
    fn the_plain_ascii_scan_rejects_any_byte_to_escape_or_beyond_ascii_anywhere() {
        let harmless = [b'a', 0x20, 0x7f, b'!', b'#', b']', 0x21, 0x23, b'~'];
        let others = [b'"', b'\\', 0u8, 0x1f, b'\n', 0x80, 0xc3, 0xff];
        with_one_of(&others, &harmless, |v, placed| {
            assert_eq!(is_plain_ascii(v), !placed, "{v:?}");
            // Both paths of `text` write what serde_json writes for valid text.
            let mut buf = Vec::new();
            JsonWriter::new(&mut buf).text(v, || "f".into());
            if let Ok(s) = std::str::from_utf8(v) {
                assert_eq!(buf, serde_json::to_vec(s).unwrap());
            }
        });
    }

    #[test]
    fn numbers_are_written_as_format_writes_them() {
        let listed = [
            0u64,
            1,
            7,
            8,
            9,
            10,
            15,
            16,
            99,
            100,
            101,
            255,
            999,
            1000,
            4096,
            65534,
            123_456_789,
            u32::MAX as u64,
            9_999_999_999_999_999_999,
            10_000_000_000_000_000_000,
            u64::MAX,
        ];
        // Every digit-count boundary of base 10, 8 and 16.
        let powers_of_two = (0..64).flat_map(|k| [1u64 << k, (1u64 << k) - 1, (1u64 << k) + 1]);
        let powers_of_ten =
            (0..20).flat_map(|k| [10u64.pow(k), 10u64.pow(k) - 1, 10u64.pow(k) + 1]);
        for n in listed.into_iter().chain(powers_of_two).chain(powers_of_ten) {
            let mut buf = Vec::new();
            let mut w = JsonWriter::new(&mut buf);
            w.open_array()
                .u64(n)
                .i64(n as i64)
                .i64((n as i64).wrapping_neg())
                .num_str("0x", n, 16)
                .num_str("0o", n, 8)
                .num_str("", n, 10)
                .close_array();
            let want = format!(
                "[{n},{},{},\"{n:#x}\",\"{n:#o}\",\"{n}\"]",
                n as i64,
                (n as i64).wrapping_neg()
            );
            assert_eq!(String::from_utf8(buf).unwrap(), want);
        }
        let mut buf = Vec::new();
        JsonWriter::new(&mut buf).i64(i64::MIN);
        assert_eq!(String::from_utf8(buf).unwrap(), i64::MIN.to_string());
    }

    #[test]
    fn nesting_commas_and_encoding_make_one_valid_object() {
        let mut buf = Vec::new();
        let mut w = JsonWriter::new(&mut buf);
        w.open();
        w.key(key!("a")).u64(1).key(key!("b")).open_array().i64(-1).null().bool(true).close_array();
        w.object(key!("c"))
            .key(key!("d"))
            .fmt(format_args!("{:#x}", 255))
            .key(key!("e"))
            .text(b"\xff", || "c.e".into())
            .close();
        w.key(key!("v")).value(&serde_json::json!({"x": [1, "y"]}));
        w.encoding().close();
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": [-1, null, true], "c": {"d": "0xff", "e": "%FF"}, "v": {"x": [1, "y"]}, "encoding": {"percent": ["c.e"]}})
        );
    }
}
