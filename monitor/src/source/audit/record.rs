//! One audit record split into type, timestamp, serial and `name=value` fields.
//!
//! Three spellings of the same thing arrive here: a line of auditd's log in the raw format
//! (`type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e ...`), the same line in the
//! enriched format (auditd's interpretation appended after a 0x1d separator: `UID="alice"`,
//! the names the logging host gave its ids, kept apart from the raw fields), with an
//! optional `node=` prefix; and the body of a netlink message
//! (`audit(1700000000.123:42): ...`, its type in the netlink header).
//! Values are kept as written; `decode` gives a string field's bytes.

use crate::vocab::records as types;
use std::fmt;

/// Why a line is not an audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A parsed record. Owns its text; fields are byte ranges into it.
#[derive(Clone, Debug)]
pub struct Record {
    text: String,
    /// Record type number (0 when the name is not a known type).
    pub rtype: u16,
    node: Option<(u32, u32)>,
    /// Wall-clock time of the event: seconds and milliseconds since the epoch.
    pub sec: u64,
    pub ms: u32,
    /// The event serial: records of one event share it (and the time).
    pub serial: u64,
    fields: Vec<(u32, u32, u32, u32)>,
    /// The enriched format's interpreted fields (after 0x1d).
    interpreted: Vec<(u32, u32, u32, u32)>,
}

/// Records longer than this are cut (the kernel's own limit is 8970 bytes per record;
/// user-space messages are shorter).
pub const LINE_MAX: usize = 64 * 1024;

impl Record {
    /// A line of an audit log (raw or enriched format).
    pub fn parse_line(line: &str) -> Result<Record, Malformed> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > LINE_MAX {
            return Err(Malformed("line longer than 64 KiB"));
        }
        let mut rest = line;
        let mut node = None;
        if let Some(after) = rest.strip_prefix("node=") {
            let end = after.find(' ').ok_or(Malformed("node= without a record after it"))?;
            node = Some((5u32, 5 + end as u32));
            rest = &after[end + 1..];
        }
        let after_type =
            rest.strip_prefix("type=").ok_or(Malformed("no type= at the start of the line"))?;
        let end = after_type.find(' ').ok_or(Malformed("type= without msg="))?;
        let type_name = &after_type[..end];
        let rtype = match type_name.strip_prefix("UNKNOWN[").and_then(|s| s.strip_suffix(']')) {
            // auditd writes types it has no name for as UNKNOWN[n]: keep the number.
            Some(n) => n.parse().map_err(|_| Malformed("UNKNOWN[...] type without a number"))?,
            None => types::number(type_name).unwrap_or(0),
        };
        let body =
            after_type[end + 1..].strip_prefix("msg=").ok_or(Malformed("no msg= after type="))?;
        let body_start = line.len() - body.len();
        let mut r = Record::parse_body(line.to_string(), body_start, rtype)?;
        r.node = node;
        Ok(r)
    }

    /// The text of a netlink message of type `rtype`.
    pub fn parse_netlink(rtype: u16, body: &[u8]) -> Result<Record, Malformed> {
        let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
        let text = String::from_utf8_lossy(&body[..end.min(LINE_MAX)]).into_owned();
        Record::parse_body(text, 0, rtype)
    }

    /// `audit(SEC.MS:SERIAL): fields` at `start` of `text`.
    fn parse_body(text: String, start: usize, rtype: u16) -> Result<Record, Malformed> {
        let body = &text[start..];
        let stamp = body.strip_prefix("audit(").ok_or(Malformed("no audit( timestamp"))?;
        let close = stamp.find("):").ok_or(Malformed("timestamp not closed by ):"))?;
        let (time, serial) =
            stamp[..close].split_once(':').ok_or(Malformed("timestamp without :serial"))?;
        let (sec, ms) = time.split_once('.').ok_or(Malformed("timestamp without .milliseconds"))?;
        let sec: u64 = sec.parse().map_err(|_| Malformed("timestamp seconds are not a number"))?;
        let ms: u32 =
            ms.parse().map_err(|_| Malformed("timestamp milliseconds are not a number"))?;
        let serial: u64 = serial.parse().map_err(|_| Malformed("serial is not a number"))?;
        if ms > 999 {
            return Err(Malformed("timestamp milliseconds above 999"));
        }
        let fields_at = start + "audit(".len() + close + 2;
        // The enriched format appends interpreted fields after 0x1d.
        let fields_end = text[fields_at..].find('\x1d').map_or(text.len(), |p| fields_at + p);
        let mut fields = Vec::new();
        split_fields(&text, fields_at, fields_end, &mut fields);
        let mut interpreted = Vec::new();
        if fields_end < text.len() {
            split_fields(&text, fields_end + 1, text.len(), &mut interpreted);
        }
        Ok(Record { text, rtype, node: None, sec, ms, serial, fields, interpreted })
    }

    /// The host name (`node=`) the record came from, when the log has one.
    pub fn node(&self) -> Option<&str> {
        self.node.map(|(a, b)| &self.text[a as usize..b as usize])
    }

    /// The raw value of field `name` (the first one of that name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(a, b, _, _)| &self.text[*a as usize..*b as usize] == name)
            .map(|(_, _, c, d)| &self.text[*c as usize..*d as usize])
    }

    /// What the enriched format says field `name` means on the logging host (`UID` for
    /// `uid`: a user name), unquoted; `None` in the raw format.
    pub fn interpreted(&self, name: &str) -> Option<&str> {
        self.interpreted
            .iter()
            .find(|(a, b, _, _)| &self.text[*a as usize..*b as usize] == name)
            .map(|(_, _, c, d)| {
                let v = &self.text[*c as usize..*d as usize];
                v.strip_prefix('"').map_or(v, |v| v.strip_suffix('"').unwrap_or(v))
            })
    }

    /// Every field, in order (a user message's inner `msg='...'` fields follow the outer ones).
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(a, b, c, d)| {
            (&self.text[*a as usize..*b as usize], &self.text[*c as usize..*d as usize])
        })
    }

    /// A string field's bytes (see `decode`).
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.get(name).and_then(decode)
    }

    pub fn num(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    pub fn hex(&self, name: &str) -> Option<u64> {
        u64::from_str_radix(self.get(name)?, 16).ok()
    }

    /// The type's name, as auditd writes it.
    pub fn type_name(&self) -> String {
        types::name(self.rtype).map_or_else(|| format!("UNKNOWN[{}]", self.rtype), str::to_string)
    }
}

/// Split `text[from..to]` into `name=value` fields. Values may be `"quoted"` (no escapes in
/// audit's format) or `'quoted'` (a user message's inner fields, which are split as well).
fn split_fields(text: &str, from: usize, to: usize, out: &mut Vec<(u32, u32, u32, u32)>) {
    let b = text.as_bytes();
    let mut i = from;
    while i < to {
        while i < to && b[i] == b' ' {
            i += 1;
        }
        let name_start = i;
        while i < to && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= to || b[i] == b' ' {
            continue; // a word without a value (AVC's "denied { read }"): not a field
        }
        let name_end = i;
        i += 1;
        let value_start = i;
        match b.get(i) {
            Some(q @ (b'"' | b'\'')) if i < to => {
                let q = *q;
                i += 1;
                while i < to && b[i] != q {
                    i += 1;
                }
                let inner_end = i;
                i = (i + 1).min(to);
                if q == b'\'' {
                    out.push((name_start as u32, name_end as u32, value_start as u32, i as u32));
                    split_fields(text, value_start + 1, inner_end, out);
                    continue;
                }
            }
            _ => {
                while i < to && b[i] != b' ' {
                    i += 1;
                }
            }
        }
        if name_end > name_start {
            out.push((name_start as u32, name_end as u32, value_start as u32, i as u32));
        }
    }
}

/// The bytes of a string value: `"text"` as is, unquoted hex (how the kernel writes strings
/// with spaces, quotes, control or non-ASCII bytes) decoded, `(null)` and `?` are absent.
pub fn decode(v: &str) -> Option<Vec<u8>> {
    if let Some(inner) = v.strip_prefix('"') {
        return Some(inner.strip_suffix('"').unwrap_or(inner).as_bytes().to_vec());
    }
    if v == "(null)" || v == "?" || v.is_empty() {
        return None;
    }
    if v.len().is_multiple_of(2) && v.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Some(unhex(v));
    }
    Some(v.as_bytes().to_vec())
}

/// Hex pairs to bytes (`v` is known to be even-length hex).
pub fn unhex(v: &str) -> Vec<u8> {
    let d = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.wrapping_sub(b'A').wrapping_add(10),
    };
    v.as_bytes().chunks_exact(2).map(|p| d(p[0]) << 4 | d(p[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_enriched_and_netlink_spellings() {
        let raw = "type=SYSCALL msg=audit(1795454091.289:1077868): arch=c000003e syscall=82 success=yes exit=0 comm=\"xtask\" key=\"docker-config\"";
        let r = Record::parse_line(raw).unwrap();
        assert_eq!((r.rtype, r.sec, r.ms, r.serial), (1300, 1795454091, 289, 1077868));
        assert_eq!(r.get("syscall"), Some("82"));
        assert_eq!(r.bytes("comm").unwrap(), b"xtask");
        let enriched = format!("node=web1 {raw}\x1dARCH=x86_64 SYSCALL=rename AUID=\"unset\"");
        let e = Record::parse_line(&enriched).unwrap();
        assert_eq!(e.node(), Some("web1"));
        assert_eq!(e.get("key"), Some("\"docker-config\""));
        assert_eq!(e.get("ARCH"), None, "interpreted fields are not fields");
        assert_eq!(e.interpreted("ARCH"), Some("x86_64"));
        assert_eq!(e.interpreted("AUID"), Some("unset"));
        assert_eq!(r.interpreted("ARCH"), None, "the raw format has none");
        let n =
            Record::parse_netlink(1300, b"audit(1795454091.289:7): arch=c000003e syscall=59\0junk")
                .unwrap();
        assert_eq!((n.serial, n.get("syscall")), (7, Some("59")));
    }

    #[test]
    fn decodes_hex_quoted_null_and_user_messages() {
        let r = Record::parse_line("type=PATH msg=audit(1.5:2): item=0 name=2F746D702F6120622F22 inode=12 other=(null) tty=(none)").unwrap();
        assert_eq!(r.bytes("name").unwrap(), b"/tmp/a b/\"");
        assert_eq!(r.bytes("other"), None);
        assert_eq!(r.bytes("tty").unwrap(), b"(none)");
        let u = Record::parse_line("type=USER_CMD msg=audit(1.001:3): pid=10 uid=1000 auid=1000 ses=2 msg='cwd=\"/home/a\" cmd=6C73202D6C exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'").unwrap();
        assert_eq!(u.rtype, 1123);
        assert_eq!(u.get("pid"), Some("10"));
        assert_eq!(u.bytes("cmd").unwrap(), b"ls -l");
        assert_eq!(u.bytes("exe").unwrap(), b"/usr/bin/sudo");
        assert_eq!(u.get("res"), Some("success"));
        let unknown = Record::parse_line("type=UNKNOWN[1999] msg=audit(1.000:4): x=1").unwrap();
        assert_eq!(unknown.rtype, 1999);
    }

    #[test]
    fn rejects_what_is_not_a_record() {
        for bad in [
            "",
            "hello",
            "type=SYSCALL",
            "type=SYSCALL msg=audit(12:3): x=1",
            "type=SYSCALL msg=audit(1.2.3:x): x=1",
            "type=SYSCALL msg=audit(1.000:3 x=1",
            "node=abc",
            "type=UNKNOWN[x] msg=audit(1.000:1): a=b",
        ] {
            assert!(Record::parse_line(bad).is_err(), "{bad:?}");
        }
        // Unterminated quotes end at the line's end; nothing panics.
        let r = Record::parse_line("type=CWD msg=audit(1.000:1): cwd=\"/x y").unwrap();
        assert_eq!(r.bytes("cwd").unwrap(), b"/x y");
    }
}
