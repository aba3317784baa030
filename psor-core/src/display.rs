//! Texts psor's messages are made of, with no dependency inside the crate, so that
//! [`crate::error`] (which every module uses) depends on nothing but this floor: a key as
//! people read it, and the `--psor` forms a bad spec's message lists.
//!
//! Re-exported where users find them: `psor_core::keys::display_key`,
//! `psor_core::connect::ACCEPTED_FORMS`.

/// The forms `--psor` accepts, for error messages and `--help`.
pub const ACCEPTED_FORMS: &str = "redis://[user[:pass]@]host:port[/db], rediss://... (TLS), \
redis+cluster://host:port[,host:port...], redis+sentinel://host:port[,host:port...]/MASTER, \
the caspac form redis,host:port[,host:port...] / redis_TLS,host:port[,...], \
or file:PATH (a .psnap snapshot file used as an embedded store, created if missing)";

/// A key as people read it: printable ASCII as is; anything else escaped the way
/// `redis-cli` quotes strings (`\n`, `\r`, `\t`, `\a`, `\b`, `\\`, `\"`, `\xHH`), and then the
/// whole key in double quotes. A key needing no escape and holding no space prints bare.
pub fn display_key(key: &[u8]) -> String {
    let plain = key.iter().all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if plain && !key.is_empty() {
        // Safe: every byte is printable ASCII.
        return String::from_utf8_lossy(key).into_owned();
    }
    let mut out = String::with_capacity(key.len() + 2);
    out.push('"');
    for &b in key {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b' '..=b'~' => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}
