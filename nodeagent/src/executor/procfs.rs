//! Process liveness from `/proc`, robust against pid reuse and zombies.

/// State letter and start time (clock ticks since boot) of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses; the fields after the last
    // `)` are fixed.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `starttime` is field 22 of the line; `state` is field 3.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

/// Start time of a process in clock ticks since boot.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether `pid` is a live (not zombie) process that started at `start_ticks` (when known).
pub fn alive(pid: u32, start_ticks: Option<u64>) -> bool {
    match stat(pid) {
        None => false,
        Some(('Z' | 'X' | 'x', _)) => false,
        Some((_, start)) => start_ticks.is_none_or(|expected| expected == start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_process_is_alive_with_its_start_time() {
        let me = std::process::id();
        let ticks = start_ticks(me).unwrap();
        assert!(alive(me, Some(ticks)));
        assert!(alive(me, None));
        assert!(!alive(me, Some(ticks + 1)));
    }

    #[test]
    fn zombies_and_missing_processes_are_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it exited.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive(pid, None) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.wait().unwrap();
        assert!(!alive(pid, None));
    }
}
