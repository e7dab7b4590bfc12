//! Host and operating system: the host name, `unique.hostname`, `kernel.name`,
//! `kernel.version`, `kernel.arch`, `os.name`, `os.version`.

use std::collections::BTreeMap;

use caravan_schemas::node::NodeAddress;
use nix::sys::utsname::uname;
use nix::unistd::gethostname;

use super::{Fingerprint, read_text};

/// Parses an `os-release(5)` file into its variables, unquoting the values.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            Some((key.trim().to_string(), unquote(value.trim())))
        })
        .collect()
}

/// Undoes shell-style quoting: `"..."` (with `\` escapes) or `'...'`.
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn collect(fp: &mut Fingerprint) {
    match gethostname() {
        Ok(name) => {
            let name = name.to_string_lossy().into_owned();
            if !name.is_empty() {
                fp.set("unique.hostname", &name);
                fp.addresses.push(NodeAddress {
                    r#type: "Hostname".into(),
                    address: name.clone(),
                });
                fp.hostname = name;
            }
        }
        Err(err) => tracing::debug!(%err, "fingerprint: gethostname failed"),
    }
    match uname() {
        Ok(uts) => {
            fp.set(
                "kernel.name",
                uts.sysname().to_string_lossy().to_lowercase(),
            );
            fp.set("kernel.version", uts.release().to_string_lossy());
            fp.set("kernel.arch", uts.machine().to_string_lossy());
        }
        Err(err) => tracing::debug!(%err, "fingerprint: uname failed"),
    }
    let Some(text) = read_text("/etc/os-release").or_else(|| read_text("/usr/lib/os-release"))
    else {
        return;
    };
    let release = parse_os_release(&text);
    for (var, attr) in [("ID", "os.name"), ("VERSION_ID", "os.version")] {
        match release.get(var).filter(|v| !v.is_empty()) {
            Some(value) => fp.set(attr, value),
            None => tracing::debug!("fingerprint: no {var} in os-release"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
# a comment
HOME_URL='https://www.debian.org/'
QUOTED="say \"hi\""
"#;

    #[test]
    fn fingerprint_os_release() {
        let vars = parse_os_release(DEBIAN);
        assert_eq!(vars["ID"], "debian");
        assert_eq!(vars["VERSION_ID"], "12");
        assert_eq!(vars["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(vars["HOME_URL"], "https://www.debian.org/");
        assert_eq!(vars["QUOTED"], "say \"hi\"");
        assert!(!vars.keys().any(|k| k.starts_with('#')));
    }
}
