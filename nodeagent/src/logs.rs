//! Reading the log files of tasks: `<alloc_root>/<alloc_id>/alloc/logs/<task>.<type>.<n>`, where
//! `type` is `stdout` or `stderr` and `n` counts up from 0 as the files rotate (older files may
//! have been deleted: rotation keeps the last `maxFiles`).
//!
//! ```text
//! resolve(alloc, task?) ─▶ logs dir + task ─▶ LogReader::open(tail?) ─▶ read_chunk() … ─▶ None
//!                                            (start: first file, or N lines from the end)   at the end
//! ```
//!
//! Everything here is blocking file IO; the HTTP layer (`crate::http`) runs it on the blocking
//! pool.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Block size of backward scans and of reads.
const BLOCK: usize = 64 * 1024;

/// Which output of a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogType {
    #[default]
    Stdout,
    Stderr,
}

impl LogType {
    pub fn as_str(self) -> &'static str {
        match self {
            LogType::Stdout => "stdout",
            LogType::Stderr => "stderr",
        }
    }

    /// `stdout` or `stderr`.
    pub fn parse(s: &str) -> Option<LogType> {
        match s {
            "stdout" => Some(LogType::Stdout),
            "stderr" => Some(LogType::Stderr),
            _ => None,
        }
    }
}

/// Why logs cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An allocation id that is no UUID, or a task name that could escape the allocation
    /// directory.
    #[error(transparent)]
    InvalidName(#[from] crate::paths::UnsafeName),
    #[error("allocation {0} not found on this node")]
    AllocNotFound(String),
    #[error("task {task:?} not found in allocation {alloc}")]
    TaskNotFound { alloc: String, task: String },
    /// No task was named and the allocation does not have exactly one task with logs.
    #[error("{0}")]
    TaskRequired(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `<alloc_root>/<alloc_id>/alloc/logs`, the allocation id checked to be a UUID.
pub fn logs_dir(alloc_root: &Path, alloc_id: &str) -> Result<PathBuf, crate::paths::UnsafeName> {
    Ok(crate::paths::alloc_dir(alloc_root, alloc_id)?
        .join("alloc")
        .join("logs"))
}

/// The file of rotation `index`.
pub fn log_file(dir: &Path, task: &str, ty: LogType, index: u64) -> PathBuf {
    dir.join(format!("{task}.{}.{index}", ty.as_str()))
}

/// The rotation index of `file_name` if it is a `type` file of `task`.
fn index_of(file_name: &str, task: &str, ty: LogType) -> Option<u64> {
    let rest = file_name.strip_prefix(task)?.strip_prefix('.')?;
    let digits = rest.strip_prefix(ty.as_str())?.strip_prefix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn file_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// The `type` files of `task` in `dir`, by increasing rotation index. A missing directory has
/// none.
pub fn rotated_files(dir: &Path, task: &str, ty: LogType) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files: Vec<(u64, PathBuf)> = file_names(dir)?
        .into_iter()
        .filter_map(|name| index_of(&name, task, ty).map(|i| (i, dir.join(name))))
        .collect();
    files.sort();
    Ok(files)
}

/// The tasks with at least one stdout or stderr file in `dir`.
pub fn tasks_with_logs(dir: &Path) -> io::Result<BTreeSet<String>> {
    Ok(file_names(dir)?
        .iter()
        .filter_map(|name| {
            let (rest, index) = name.rsplit_once('.')?;
            let (task, ty) = rest.rsplit_once('.')?;
            let numeric = !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit());
            (numeric && LogType::parse(ty).is_some() && !task.is_empty()).then(|| task.to_string())
        })
        .collect())
}

/// Checks the names (the allocation id a UUID, the task name one path component, as the
/// allocation runner requires them) before touching the filesystem, and finds the logs
/// directory and task: a named task must have log files or a task directory
/// (`<alloc_root>/<alloc_id>/<task>`); an unnamed one must be the only task with log files.
pub fn resolve(
    alloc_root: &Path,
    alloc_id: &str,
    task: Option<&str>,
) -> Result<(PathBuf, String), LogError> {
    let dir = logs_dir(alloc_root, alloc_id)?;
    if let Some(task) = task {
        crate::paths::component("task name", task)?;
    }
    let alloc_dir = alloc_root.join(alloc_id);
    if !alloc_dir.is_dir() {
        return Err(LogError::AllocNotFound(alloc_id.to_string()));
    }
    let tasks = tasks_with_logs(&dir)?;
    let task = match task {
        Some(task) if tasks.contains(task) || alloc_dir.join(task).is_dir() => task.to_string(),
        Some(task) => {
            return Err(LogError::TaskNotFound {
                alloc: alloc_id.to_string(),
                task: task.to_string(),
            });
        }
        None if tasks.len() == 1 => tasks.into_iter().next().unwrap_or_default(),
        None if tasks.is_empty() => {
            return Err(LogError::TaskRequired(format!(
                "allocation {alloc_id} has no task logs yet: name the task"
            )));
        }
        None => {
            let names: Vec<String> = tasks.into_iter().collect();
            return Err(LogError::TaskRequired(format!(
                "allocation {alloc_id} has several tasks ({}): name one",
                names.join(", ")
            )));
        }
    };
    Ok((dir, task))
}

/// A place in a task's output: rotation index and byte offset in that file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub index: u64,
    pub offset: u64,
}

/// Where the last `lines` lines of `files` (in rotation order) start. A final line without a
/// newline counts; with fewer lines than asked, the start of the oldest file.
pub fn tail_start(files: &[(u64, PathBuf)], lines: u64) -> io::Result<Position> {
    let end = match files.last() {
        Some((index, path)) => Position {
            index: *index,
            offset: file_len(path)?,
        },
        None => return Ok(Position::default()),
    };
    if lines == 0 {
        return Ok(end);
    }
    let mut newlines = 0u64;
    let mut seen_last_byte = false;
    let mut buf = vec![0u8; BLOCK];
    for (index, path) in files.iter().rev() {
        let mut file = match File::open(path) {
            Ok(f) => f,
            // Rotated away since the listing: nothing older is left to show.
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        };
        let mut pos = file.metadata()?.len();
        while pos > 0 {
            let start = pos.saturating_sub(BLOCK as u64);
            let block = &mut buf[..(pos - start) as usize];
            file.seek(SeekFrom::Start(start))?;
            file.read_exact(block)?;
            for (i, byte) in block.iter().enumerate().rev() {
                if !seen_last_byte {
                    seen_last_byte = true;
                    // The newline ending the last line does not start another one.
                    if *byte == b'\n' {
                        continue;
                    }
                }
                if *byte == b'\n' {
                    newlines += 1;
                    if newlines == lines {
                        return Ok(Position {
                            index: *index,
                            offset: start + i as u64 + 1,
                        });
                    }
                }
            }
            pos = start;
        }
    }
    Ok(Position {
        index: files[0].0,
        offset: 0,
    })
}

fn file_len(path: &Path) -> io::Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Reads a task's output from a position onwards, across rotations.
#[derive(Debug)]
pub struct LogReader {
    dir: PathBuf,
    task: String,
    ty: LogType,
    position: Position,
    /// The file at `position.index`, once opened (kept open so a file rotated away while being
    /// read is still read to its end).
    file: Option<File>,
}

impl LogReader {
    /// A reader from the start of the oldest retained file, or of the last `tail` lines.
    pub fn open(dir: &Path, task: &str, ty: LogType, tail: Option<u64>) -> io::Result<LogReader> {
        let files = rotated_files(dir, task, ty)?;
        let position = match tail {
            Some(lines) => tail_start(&files, lines)?,
            None => Position {
                index: files.first().map_or(0, |(i, _)| *i),
                offset: 0,
            },
        };
        Ok(LogReader::at(dir, task, ty, position))
    }

    /// A reader from `position`.
    pub fn at(dir: &Path, task: &str, ty: LogType, position: Position) -> LogReader {
        LogReader {
            dir: dir.to_path_buf(),
            task: task.to_string(),
            ty,
            position,
            file: None,
        }
    }

    /// Where the next read starts.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The logs directory still exists (it goes when the allocation is collected).
    pub fn dir_exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// The next bytes (at most `max`), moving on to the next rotation when the current file is
    /// done; `None` when everything written so far has been read.
    pub fn read_chunk(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; max.max(1)];
        loop {
            if let Some(n) = self.read_current(&mut buf)? {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            // The writer creates file n+1 only once it is done with file n: list first, then
            // read once more, so that nothing written to n before n+1 appeared is skipped.
            let files = rotated_files(&self.dir, &self.task, self.ty)?;
            if let Some(n) = self.read_current(&mut buf)? {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            match files.iter().find(|(i, _)| *i > self.position.index) {
                Some((next, _)) => {
                    self.position = Position {
                        index: *next,
                        offset: 0,
                    };
                    self.file = None;
                }
                None => return Ok(None),
            }
        }
    }

    /// Reads from the current file; `None` at its end or when it does not exist.
    fn read_current(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.file.is_none() {
            let path = log_file(&self.dir, &self.task, self.ty, self.position.index);
            match File::open(&path) {
                Ok(mut f) => {
                    let len = f.metadata()?.len();
                    if len < self.position.offset {
                        // Truncated under us: start over.
                        self.position.offset = 0;
                    }
                    f.seek(SeekFrom::Start(self.position.offset))?;
                    self.file = Some(f);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(None);
        };
        let n = file.read(buf)?;
        self.position.offset += n as u64;
        Ok((n > 0).then_some(n))
    }
}

/// Everything retained of a task's output (or its last `tail` lines), for tests and small
/// reads.
pub fn read_all(dir: &Path, task: &str, ty: LogType, tail: Option<u64>) -> io::Result<Vec<u8>> {
    let mut reader = LogReader::open(dir, task, ty, tail)?;
    let mut out = Vec::new();
    while let Some(chunk) = reader.read_chunk(BLOCK)? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(dir: &Path, name: &str, content: &str) {
        std::fs::write(dir.join(name), content).unwrap();
    }

    fn append(dir: &Path, name: &str, content: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(name))
            .unwrap();
        f.write_all(content.as_bytes()).unwrap();
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    /// The uid of the allocation of the tests.
    const A1: &str = "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c";

    /// An allocation `A1` whose task `web` rotated: files 0 and 1 deleted, 2..=4 kept.
    fn rotated() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dir = logs_dir(root.path(), A1).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "web.stdout.2", "one\ntwo\n");
        write(&dir, "web.stdout.3", "three\nfo");
        write(&dir, "web.stdout.4", "ur\nfive\n");
        write(&dir, "web.stdout.10", "six\n");
        write(&dir, "web.stderr.0", "oops\n");
        write(&dir, "web.stdout.x", "not a log\n");
        write(&dir, "webby.stdout.0", "another task\n");
        (root, dir)
    }

    #[test]
    fn rotated_files_are_ordered_by_number_not_name() {
        let (_root, dir) = rotated();
        let files = rotated_files(&dir, "web", LogType::Stdout).unwrap();
        let indexes: Vec<u64> = files.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [2, 3, 4, 10]);
        assert_eq!(
            rotated_files(&dir, "web", LogType::Stderr).unwrap().len(),
            1
        );
        assert!(
            rotated_files(&dir.join("nope"), "web", LogType::Stdout)
                .unwrap()
                .is_empty()
        );
        let tasks: Vec<String> = tasks_with_logs(&dir).unwrap().into_iter().collect();
        assert_eq!(tasks, ["web", "webby"]);
    }

    #[test]
    fn everything_retained_is_read_in_order() {
        let (_root, dir) = rotated();
        let all = read_all(&dir, "web", LogType::Stdout, None).unwrap();
        assert_eq!(text(all), "one\ntwo\nthree\nfour\nfive\nsix\n");
        let err = read_all(&dir, "web", LogType::Stderr, None).unwrap();
        assert_eq!(text(err), "oops\n");
    }

    #[test]
    fn tail_counts_lines_across_files() {
        let (_root, dir) = rotated();
        let tail = |n| text(read_all(&dir, "web", LogType::Stdout, Some(n)).unwrap());
        assert_eq!(tail(0), "");
        assert_eq!(tail(1), "six\n");
        assert_eq!(tail(2), "five\nsix\n");
        // "four" spans files 3 and 4.
        assert_eq!(tail(3), "four\nfive\nsix\n");
        assert_eq!(tail(4), "three\nfour\nfive\nsix\n");
        assert_eq!(tail(6), "one\ntwo\nthree\nfour\nfive\nsix\n");
        assert_eq!(tail(100), "one\ntwo\nthree\nfour\nfive\nsix\n");
    }

    #[test]
    fn a_last_line_without_newline_counts_and_empty_files_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        write(dir, "t.stdout.0", "a\nb\nc");
        write(dir, "t.stdout.1", "");
        let tail = |n| text(read_all(dir, "t", LogType::Stdout, Some(n)).unwrap());
        assert_eq!(tail(1), "c");
        assert_eq!(tail(2), "b\nc");
        write(dir, "t.stdout.1", "\n\n");
        // The output is now "a\nb\nc\n\n": its last line is empty.
        assert_eq!(tail(1), "\n");
        assert_eq!(tail(2), "c\n\n");
        assert_eq!(tail(3), "b\nc\n\n");
    }

    #[test]
    fn tail_scans_blocks_larger_than_one_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let line = "x".repeat(1000);
        let body: String = (0..200).map(|i| format!("{i} {line}\n")).collect();
        write(dir, "t.stdout.0", &body);
        let got = text(read_all(dir, "t", LogType::Stdout, Some(150)).unwrap());
        assert!(got.starts_with(&format!("50 {line}\n")));
        assert_eq!(got.lines().count(), 150);
    }

    #[test]
    fn a_reader_follows_appends_and_rotations() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let mut reader = LogReader::open(dir, "t", LogType::Stdout, None).unwrap();
        assert_eq!(reader.read_chunk(1024).unwrap(), None, "no file yet");
        append(dir, "t.stdout.0", "a\n");
        assert_eq!(reader.read_chunk(1024).unwrap(), Some(b"a\n".to_vec()));
        assert_eq!(reader.read_chunk(1024).unwrap(), None);
        append(dir, "t.stdout.0", "b\n");
        // The last bytes of file 0 come before file 1, even when both are there.
        append(dir, "t.stdout.1", "c\n");
        let mut got = Vec::new();
        while let Some(chunk) = reader.read_chunk(1).unwrap() {
            got.extend(chunk);
        }
        assert_eq!(text(got), "b\nc\n");
        assert_eq!(
            reader.position(),
            Position {
                index: 1,
                offset: 2
            }
        );
        // A deleted older file does not stop the reader.
        std::fs::remove_file(dir.join("t.stdout.0")).unwrap();
        append(dir, "t.stdout.2", "d\n");
        assert_eq!(reader.read_chunk(1024).unwrap(), Some(b"d\n".to_vec()));
    }

    #[test]
    fn a_reader_past_a_deleted_file_moves_on() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        write(dir, "t.stdout.5", "late\n");
        let mut reader = LogReader::at(dir, "t", LogType::Stdout, Position::default());
        assert_eq!(reader.read_chunk(1024).unwrap(), Some(b"late\n".to_vec()));
    }

    #[test]
    fn names_are_checked_and_tasks_resolved() {
        let (root, dir) = rotated();
        let root = root.path();
        assert!(matches!(
            resolve(root, "a1", None),
            Err(LogError::InvalidName(_))
        ));
        for bad in ["..", "a/b", "../a1", "", ".", "/etc", "../../etc"] {
            assert!(
                matches!(resolve(root, bad, None), Err(LogError::InvalidName(_))),
                "{bad:?}"
            );
            assert!(matches!(
                resolve(root, A1, Some(bad)),
                Err(LogError::InvalidName(_))
            ));
        }
        assert!(matches!(
            resolve(root, "1b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c", Some("web")),
            Err(LogError::AllocNotFound(_))
        ));
        assert!(matches!(
            resolve(root, A1, Some("db")),
            Err(LogError::TaskNotFound { .. })
        ));
        assert!(matches!(
            resolve(root, A1, None),
            Err(LogError::TaskRequired(_))
        ));
        assert_eq!(
            resolve(root, A1, Some("web")).unwrap(),
            (dir.clone(), "web".into())
        );
        // A task that has not written yet is known by its directory.
        std::fs::create_dir_all(root.join(A1).join("db")).unwrap();
        assert_eq!(resolve(root, A1, Some("db")).unwrap().1, "db");
        std::fs::remove_file(dir.join("webby.stdout.0")).unwrap();
        assert_eq!(resolve(root, A1, None).unwrap().1, "web");
    }
}
