//! Splits a chunked byte stream into lines, whatever the chunk boundaries.

use bytes::{Bytes, BytesMut};

/// Accumulates chunks and yields every complete, non-blank line (without its `\n` or `\r\n`).
#[derive(Debug, Default)]
pub struct LineDecoder {
    partial: BytesMut,
}

impl LineDecoder {
    /// Adds a chunk; returns the lines it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.partial.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(newline) = self.partial.iter().position(|&b| b == b'\n') {
            let line = self.partial.split_to(newline + 1).freeze();
            if let Some(line) = trim(line) {
                lines.push(line);
            }
        }
        lines
    }

    /// The last line when the stream ends without a final newline.
    pub fn finish(&mut self) -> Option<Bytes> {
        trim(std::mem::take(&mut self.partial).freeze())
    }
}

/// Drops the line ending; `None` for blank lines (some servers send them as keep-alives).
fn trim(line: Bytes) -> Option<Bytes> {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let start = line[..end]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(end);
    (start < end).then(|| line.slice(start..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(chunks: &[&[u8]]) -> Vec<String> {
        let mut decoder = LineDecoder::default();
        let mut out: Vec<Bytes> = chunks.iter().flat_map(|c| decoder.push(c)).collect();
        out.extend(decoder.finish());
        out.iter()
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        assert_eq!(
            feed(&[b"{\"a\":", b"1}\n{\"b\"", b":2}\n"]),
            ["{\"a\":1}", "{\"b\":2}"]
        );
    }

    #[test]
    fn one_chunk_may_hold_many_lines_and_blank_lines_are_skipped() {
        assert_eq!(feed(&[b"x\n\n  \r\ny\r\nz\n"]), ["x", "y", "z"]);
    }

    #[test]
    fn a_final_line_without_newline_is_kept() {
        assert_eq!(feed(&[b"x\ny"]), ["x", "y"]);
        assert!(feed(&[b"\n", b""]).is_empty());
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let text = b"{\"type\":\"ADDED\"}\n{\"type\":\"DELETED\"}\n";
        for cut in 0..=text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(
                feed(&[a, b]),
                ["{\"type\":\"ADDED\"}", "{\"type\":\"DELETED\"}"],
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(feed(&bytes).len(), 2);
    }
}
