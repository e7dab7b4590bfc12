//! 64-bit FNV-1a over a sequence of strings, each followed by a separator byte no UTF-8 text
//! contains: stable across runs, builds and platforms. Names that must come out the same
//! everywhere are made from it (allocation names, a node's computed class).

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A running [stable hash](self), fed one part at a time.
#[derive(Clone, Copy, Debug)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        Self(OFFSET)
    }
}

impl StableHasher {
    /// Adds `text` and the separator after it.
    pub fn part(&mut self, text: &str) {
        for byte in text.bytes() {
            self.mix(byte);
        }
        self.mix(0xff);
    }

    fn mix(&mut self, byte: u8) {
        self.0 ^= u64::from(byte);
        self.0 = self.0.wrapping_mul(PRIME);
    }

    /// The hash of the parts so far.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The [stable hash](self) of `parts`.
pub fn stable_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hasher = StableHasher::default();
    for part in parts {
        hasher.part(part);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_separates_parts_and_is_fixed() {
        assert_ne!(stable_hash(["ab", "c"]), stable_hash(["a", "bc"]));
        assert_eq!(stable_hash(["x"]), stable_hash(["x"]));
        // FNV-1a of "x" then 0xff: pinned, since stored names are made from it.
        assert_eq!(stable_hash(["x"]), 0x08f1_c907_b58e_ba68);
    }
}
