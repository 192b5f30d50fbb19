//! sha256 content digests: parsing, computing, and hashing a stream as it is read.

use super::error::ImageError;
use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};

/// A validated `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>`; other algorithms are refused because only sha256 is verified.
    pub fn parse(s: &str) -> Result<Digest, ImageError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| ImageError::invalid(format!("digest {s:?}"), "only sha256 digests are supported"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ImageError::invalid(format!("digest {s:?}"), "expected 64 lowercase hex digits"));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in hasher.finalize() {
            s.push_str(&format!("{b:02x}"));
        }
        Digest(s)
    }

    /// The hex part, used as a file name.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Fails with a digest-mismatch error about `what` unless `actual` equals `self`.
    pub fn verify(&self, actual: &Digest, what: &str) -> Result<(), ImageError> {
        if self == actual {
            return Ok(());
        }
        Err(ImageError::DigestMismatch { what: what.to_string(), expected: self.0.clone(), actual: actual.0.clone() })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reader that feeds every byte it passes on into a sha256 hasher and counts them.
pub struct HashingReader<'h, R> {
    inner: R,
    hasher: &'h mut Sha256,
    count: &'h Cell<u64>,
}

impl<'h, R: Read> HashingReader<'h, R> {
    /// Wraps `inner`; the caller finalizes `hasher` once the reader is dropped. `count` is
    /// shared so a meter further up can compare it while bytes flow.
    pub fn new(inner: R, hasher: &'h mut Sha256, count: &'h Cell<u64>) -> Self {
        HashingReader { inner, hasher, count }
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        let d = Digest::of(b"");
        assert_eq!(d.as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
    }

    #[test]
    fn malformed_digests_are_refused() {
        for bad in ["sha512:00", "sha256:xyz", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"] {
            let err = Digest::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(Digest::parse(&upper).is_err());
    }

    #[test]
    fn hashing_reader_matches_digest_of_whole_input() {
        let data = b"hello layers".repeat(1000);
        let mut hasher = Sha256::new();
        let count = Cell::new(0);
        let mut out = Vec::new();
        HashingReader::new(&data[..], &mut hasher, &count).read_to_end(&mut out).unwrap();
        assert_eq!(count.get(), data.len() as u64);
        assert_eq!(Digest::from_hasher(hasher), Digest::of(&data));
        let err = Digest::of(b"a").verify(&Digest::of(b"b"), "layer x").unwrap_err().to_string();
        assert!(err.starts_with("layer x: digest mismatch: expected sha256:"), "{err}");
    }
}
