//! Allocation names: Nomad's `<job>.<group>[<index>]` identity, encoded in a DNS-1123 object
//! name `<job>-<group>-<index>-<8 hex>`. The scheduler names the allocations it places; the
//! CLI and tools read the index back.

use crate::limits::MAX_NAME_LEN;
use crate::stable_hash::stable_hash;

/// Longest object name the API accepts.
const MAX_NAME: usize = MAX_NAME_LEN;

/// Lower-cases `part` and replaces every character outside `[a-z0-9-]` with `-`.
fn push_dns_part(out: &mut String, part: &str) {
    let dns = |c: char| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            c
        } else {
            '-'
        }
    };
    if part.is_ascii() {
        out.extend(part.bytes().map(|b| dns(char::from(b))));
    } else {
        out.extend(part.chars().map(dns));
    }
}

/// `n` in decimal, written into the end of `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        // A digit: always below 10.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// The object name of a new allocation: `<job>-<group>-<index>-<8 hex>`, where the hex is a
/// stable hash of `salt` (eval name, previous allocation, node …) so that names are unique and
/// deterministic. Always a valid DNS-1123 subdomain. Written without the formatting machinery:
/// it runs once per placement.
pub fn alloc_object_name(job: &str, group: &str, index: u32, salt: &[&str]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 10];
    let index = decimal(index, &mut digits);
    let hash = stable_hash(
        [job, group]
            .into_iter()
            .chain(salt.iter().copied())
            .chain(std::iter::once(index)),
    );
    let mut prefix = String::with_capacity(job.len() + group.len() + 2);
    push_dns_part(&mut prefix, job);
    prefix.push('-');
    push_dns_part(&mut prefix, group);
    let prefix = prefix.trim_matches('-');
    let suffix_len = 1 + 10 + 1 + 8;
    let keep = prefix.len().min(MAX_NAME - suffix_len);
    let mut name = String::with_capacity(keep + suffix_len);
    name.push_str(prefix[..keep].trim_end_matches('-'));
    if name.is_empty() {
        name.push('a');
    }
    name.push('-');
    name.push_str(index);
    name.push('-');
    let hash = hash as u32;
    for shift in (0..8).rev() {
        name.push(char::from(HEX[((hash >> (shift * 4)) & 0xf) as usize]));
    }
    name
}

/// The group index encoded in an allocation's object name by [`alloc_object_name`].
pub fn parse_index(name: &str) -> Option<u32> {
    let mut parts = name.rsplitn(3, '-');
    let hash = parts.next()?;
    let index = parts.next()?;
    parts.next()?;
    let hex = hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| index.parse().ok()).flatten()
}

/// Nomad's display name of an allocation, `<job>.<group>[<index>]`.
pub fn display_name(job: &str, group: &str, index: u32) -> String {
    format!("{job}.{group}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_names_are_dns_safe_and_carry_their_index() {
        let name = alloc_object_name("web", "Front_End", 12, &["eval-1"]);
        assert!(name.starts_with("web-front-end-12-"), "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        assert_eq!(parse_index(&name), Some(12));
        assert_ne!(name, alloc_object_name("web", "Front_End", 12, &["eval-2"]));
        assert_eq!(parse_index("not-an-alloc"), None);
        assert_eq!(parse_index("a1"), None);
        // The same name as the formatting machinery writes.
        let hash = stable_hash(["web", "Front_End", "eval-1", "12"]) as u32;
        assert_eq!(name, format!("web-front-end-12-{hash:08x}"));
        assert!(alloc_object_name("j", "g", 0, &[]).starts_with("j-g-0-"));
        assert!(alloc_object_name("j", "g", u32::MAX, &[]).starts_with("j-g-4294967295-"));
        assert!(alloc_object_name("jöb", "g", 7, &[]).starts_with("j-b-g-7-"));
        let long = "x".repeat(400);
        assert!(alloc_object_name(&long, "g", 1, &[]).len() <= MAX_NAME);
    }

    #[test]
    fn display_names_are_nomads() {
        assert_eq!(display_name("web", "api", 3), "web.api[3]");
    }
}
