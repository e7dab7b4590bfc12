//! Rotated log files of one output stream: `<dir>/<task>.<stream>.<n>`, `n` counting up from
//! 0, a new file when the current one would pass the size limit, at most `max_files` kept.
//! The files are readable by the agent's user only (0600): a task's output may hold secrets.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A writer that rotates its files by size. Every write goes straight to the file.
#[derive(Debug)]
pub struct RotatingWriter {
    dir: PathBuf,
    /// `<task>.<stream>`.
    prefix: String,
    max_files: usize,
    max_bytes: u64,
    /// Indices of the files on disk, oldest first; the last one is being written.
    indices: Vec<u64>,
    file: File,
    written: u64,
}

impl RotatingWriter {
    /// Opens `<dir>/<prefix>.<n>`, `n` one past the highest index already there (a restarted
    /// task starts a new file), and deletes old files beyond `max_files`. `prefix`
    /// (`<task>.<stream>`) must be one path component.
    pub fn open(
        dir: &Path,
        prefix: &str,
        max_files: u32,
        max_bytes: u64,
    ) -> io::Result<RotatingWriter> {
        crate::paths::component("log file name", prefix)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        std::fs::create_dir_all(dir)?;
        let mut indices = existing_indices(dir, prefix)?;
        let next = indices.last().map_or(0, |last| last + 1);
        let file = create(&dir.join(format!("{prefix}.{next}")))?;
        indices.push(next);
        let mut writer = RotatingWriter {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            max_files: max_files.max(1) as usize,
            max_bytes: max_bytes.max(1),
            indices,
            file,
            written: 0,
        };
        writer.prune();
        Ok(writer)
    }

    /// The file being written.
    pub fn current_path(&self) -> PathBuf {
        let index = self.indices.last().copied().unwrap_or_default();
        self.path(index)
    }

    fn path(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{}.{index}", self.prefix))
    }

    fn rotate(&mut self) -> io::Result<()> {
        let next = self.indices.last().map_or(0, |last| last + 1);
        self.file = create(&self.path(next))?;
        self.indices.push(next);
        self.written = 0;
        self.prune();
        Ok(())
    }

    fn prune(&mut self) {
        while self.indices.len() > self.max_files {
            let oldest = self.indices.remove(0);
            let _ = std::fs::remove_file(self.path(oldest));
        }
    }

    /// Copies `reader` until its end (e.g. the task's pipe closed). Output that cannot be
    /// written (a full disk) is dropped and reported to `on_error`, but reading goes on: the
    /// task must not block on, or be killed by, its own output.
    pub fn copy_from(
        &mut self,
        mut reader: impl Read,
        mut on_error: impl FnMut(&io::Error),
    ) -> io::Result<u64> {
        let mut buf = vec![0u8; 32 * 1024];
        let mut total = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match self.write_all(&buf[..n]) {
                Ok(()) => total += n as u64,
                Err(e) => on_error(&e),
            }
        }
    }
}

impl Write for RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.written >= self.max_bytes {
            self.rotate()?;
        }
        // Fill the current file up to the limit; the rest goes to the next one.
        let room = (self.max_bytes - self.written).min(buf.len() as u64) as usize;
        let n = self.file.write(&buf[..room])?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Indices of `<prefix>.<n>` files in `dir`, ascending.
fn existing_indices(dir: &Path, prefix: &str) -> io::Result<Vec<u64>> {
    let mut indices = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(index) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            indices.push(index);
        }
    }
    indices.sort_unstable();
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                (name, std::fs::read_to_string(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn rotating_writer_starts_a_new_file_at_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "t.stdout", 10, 4).unwrap();
        w.write_all(b"abc").unwrap();
        w.write_all(b"defghij").unwrap();
        w.write_all(b"k").unwrap();
        assert_eq!(
            files(dir.path()),
            [
                ("t.stdout.0".into(), "abcd".into()),
                ("t.stdout.1".into(), "efgh".into()),
                ("t.stdout.2".into(), "ijk".into()),
            ]
        );
        assert_eq!(w.current_path(), dir.path().join("t.stdout.2"));
    }

    #[test]
    fn rotating_writer_keeps_at_most_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "t.stderr", 2, 2).unwrap();
        w.write_all(b"aabbccd").unwrap();
        assert_eq!(
            files(dir.path()),
            [
                ("t.stderr.2".into(), "cc".into()),
                ("t.stderr.3".into(), "d".into()),
            ]
        );
    }

    #[test]
    fn rotating_writer_resumes_after_the_highest_index() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["t.stdout.3", "t.stdout.7", "t.stderr.9", "u.stdout.12"] {
            std::fs::write(dir.path().join(name), "old").unwrap();
        }
        let mut w = RotatingWriter::open(dir.path(), "t.stdout", 2, 100).unwrap();
        w.write_all(b"new").unwrap();
        // t.stdout.3 went: two files of this stream remain; other streams are left alone.
        assert_eq!(
            files(dir.path()),
            [
                ("t.stderr.9".into(), "old".into()),
                ("t.stdout.7".into(), "old".into()),
                ("t.stdout.8".into(), "new".into()),
                ("u.stdout.12".into(), "old".into()),
            ]
        );
    }

    #[test]
    fn log_files_are_private_and_stay_in_their_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "t.stdout", 3, 2).unwrap();
        w.write_all(b"abcd").unwrap();
        for name in ["t.stdout.0", "t.stdout.1"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let logs = dir.path().join("logs");
        for bad in ["../x.stdout", "/tmp/abs.stdout", ".."] {
            let err = RotatingWriter::open(&logs, bad, 3, 2).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        assert!(!logs.exists(), "nothing was created for a bad name");
    }

    #[test]
    fn rotating_writer_copies_a_reader_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "t.stdout", 3, 5).unwrap();
        let copied = w.copy_from(&b"0123456789"[..], |e| panic!("{e}")).unwrap();
        assert_eq!(copied, 10);
        assert_eq!(
            files(dir.path()),
            [
                ("t.stdout.0".into(), "01234".into()),
                ("t.stdout.1".into(), "56789".into()),
            ]
        );
    }
}
