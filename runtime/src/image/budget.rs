//! What one load may unpack: a cap per layer and per image, a share of the free space and
//! inodes of the store's filesystem, and a ratio compressed input may not expand beyond.
//! Streams are metered as they are read, so a bomb stops at its budget, not at the end of
//! the flash; a load whose client went away stops the same way.

use super::error::ImageError;
use coracle_config::settings::ImageSettings;
use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;

/// A layer may expand beyond `max_compression_ratio` for its first 64 MiB: small layers of
/// zeros or sparse files are legitimate, and a bomb is stopped well before it matters.
pub const RATIO_GRACE: u64 = 64 << 20;

/// How often (in bytes produced) a metered stream asks whether its client is still there.
const CLIENT_CHECK_EVERY: u64 = 1 << 20;

/// One bound: how much, and the setting it comes from (for the error message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    pub limit: u64,
    pub rule: String,
}

impl Bound {
    fn unlimited() -> Bound {
        Bound { limit: u64::MAX, rule: String::new() }
    }

    fn tighter(self, other: Bound) -> Bound {
        if other.limit < self.limit {
            other
        } else {
            self
        }
    }
}

/// What one stream (a layer or the archive) may produce: bytes, tar entries and ratio.
#[derive(Clone, Debug)]
pub struct Allowance {
    pub bytes: Bound,
    pub entries: Bound,
    /// 0: no ratio check.
    pub ratio: u32,
}

/// Why a metered stream was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Bytes(Bound),
    Entries(Bound),
    Ratio(u32),
    Abandoned,
}

impl Stop {
    /// The error for `what` ("layer sha256:… of busybox") that this stop means.
    pub fn into_error(self, what: &str) -> ImageError {
        let too_large = |reason: String| ImageError::TooLarge { context: what.to_string(), reason };
        match self {
            Stop::Bytes(b) => too_large(format!("unpacks to more than {} bytes, its budget under {}", b.limit, b.rule)),
            Stop::Entries(b) => too_large(format!("holds more than {} entries, its budget under {}", b.limit, b.rule)),
            Stop::Ratio(r) => too_large(format!(
                "expands to more than {r} times its compressed size beyond its first {} MiB \
                 (images.max_compression_ratio): a compression bomb?",
                RATIO_GRACE >> 20
            )),
            Stop::Abandoned => ImageError::Abandoned { context: what.to_string() },
        }
    }
}

/// The budget of one load, measured against the store's filesystem when the load starts.
pub struct Budget<'a> {
    settings: ImageSettings,
    /// Bytes and inodes this load may still write.
    disk: Bound,
    inodes: Bound,
    /// Uncompressed layer bytes of the current image (counted against `max_image_bytes`).
    image_used: u64,
    abandoned: &'a dyn Fn() -> bool,
}

impl<'a> Budget<'a> {
    /// The budget of a load into the store at `root`; `abandoned` says whether whoever asked
    /// for it has gone away (a closed connection).
    // statvfs' counts are 32-bit on 32-bit boards (armv7): the conversions are not useless there.
    #[allow(clippy::useless_conversion)]
    pub fn new(
        root: &Path,
        settings: &ImageSettings,
        abandoned: &'a dyn Fn() -> bool,
    ) -> Result<Budget<'a>, ImageError> {
        let fs =
            nix::sys::statvfs::statvfs(root).map_err(|e| ImageError::io("measuring free space on", root, e.into()))?;
        let free = u64::from(fs.blocks_available()).saturating_mul(u64::from(fs.fragment_size()));
        let pct = u64::from(settings.free_space_percent.clamp(1, 100));
        let share = |n: u64| (u128::from(n) * u128::from(pct) / 100) as u64;
        let disk = Bound {
            limit: share(free),
            rule: format!(
                "images.free_space_percent ({pct}% of the {free} bytes free on {} when the load started)",
                root.display()
            ),
        };
        // Filesystems without an inode table (btrfs) report no files at all.
        let inodes = if fs.files() == 0 {
            Bound::unlimited()
        } else {
            let free = u64::from(fs.files_available());
            Bound {
                limit: share(free),
                rule: format!(
                    "images.free_space_percent ({pct}% of the {free} inodes free on {} when the load started)",
                    root.display()
                ),
            }
        };
        Ok(Budget { settings: settings.clone(), disk, inodes, image_used: 0, abandoned })
    }

    /// Whether the client of this load has gone away.
    pub fn abandoned(&self) -> bool {
        (self.abandoned)()
    }

    /// Fails with `Abandoned` about `what` once the client has gone away.
    pub fn check_client(&self, what: &str) -> Result<(), ImageError> {
        if self.abandoned() {
            return Err(Stop::Abandoned.into_error(what));
        }
        Ok(())
    }

    /// What the next layer may produce when it is only verified (the store already has it).
    pub fn layer(&self) -> Allowance {
        let mut bytes = Bound::unlimited();
        if let Some(cap) = self.settings.max_layer_bytes {
            bytes = bytes.tighter(Bound { limit: cap, rule: "images.max_layer_bytes".into() });
        }
        if let Some(cap) = self.settings.max_image_bytes {
            let rule = format!("images.max_image_bytes ({cap} for the whole image, {} used)", self.image_used);
            bytes = bytes.tighter(Bound { limit: cap.saturating_sub(self.image_used), rule });
        }
        Allowance { bytes, entries: Bound::unlimited(), ratio: self.settings.max_compression_ratio }
    }

    /// As `layer`, for a layer that is unpacked into the store: it takes disk space too.
    pub fn layer_written(&self) -> Allowance {
        let layer = self.layer();
        Allowance { bytes: layer.bytes.tighter(self.disk.clone()), entries: self.inodes.clone(), ..layer }
    }

    /// What the staged archive may take on disk.
    pub fn archive(&self) -> Allowance {
        Allowance { bytes: self.disk.clone(), entries: self.inodes.clone(), ratio: self.settings.max_compression_ratio }
    }

    /// Starts counting the layers of the next image of the load against `max_image_bytes`.
    pub fn next_image(&mut self) {
        self.image_used = 0;
    }

    /// Counts a finished stream: `bytes` uncompressed (against the image when `layer`), and
    /// what it wrote to disk.
    pub fn charge(&mut self, bytes: u64, entries: u64, layer: bool, written: bool) {
        if layer {
            self.image_used = self.image_used.saturating_add(bytes);
        }
        if written {
            self.disk.limit = self.disk.limit.saturating_sub(bytes);
            self.inodes.limit = self.inodes.limit.saturating_sub(entries);
        }
    }
}

/// A reader that counts the bytes passing through into a shared cell.
pub struct Counted<'c, R> {
    inner: R,
    count: &'c Cell<u64>,
}

impl<'c, R: Read> Counted<'c, R> {
    pub fn new(inner: R, count: &'c Cell<u64>) -> Self {
        Counted { inner, count }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// The uncompressed side of a stream, stopped once it exceeds its allowance (bytes or
/// ratio to the compressed bytes `compressed` counts) or its client goes away. The reason
/// lands in `stop`, since the tar reader above rewraps the error it sees.
pub struct Meter<'m, R> {
    inner: R,
    produced: u64,
    next_client_check: u64,
    allowance: &'m Allowance,
    compressed: &'m Cell<u64>,
    abandoned: &'m dyn Fn() -> bool,
    stop: &'m Cell<Option<Stop>>,
}

impl<'m, R: Read> Meter<'m, R> {
    pub fn new(
        inner: R,
        allowance: &'m Allowance,
        compressed: &'m Cell<u64>,
        abandoned: &'m dyn Fn() -> bool,
        stop: &'m Cell<Option<Stop>>,
    ) -> Self {
        Meter { inner, produced: 0, next_client_check: CLIENT_CHECK_EVERY, allowance, compressed, abandoned, stop }
    }

    fn halt(&self, why: Stop) -> io::Error {
        let message = format!("{why:?}");
        self.stop.set(Some(why));
        io::Error::other(message)
    }
}

impl<R: Read> Read for Meter<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced = self.produced.saturating_add(n as u64);
        if self.produced > self.allowance.bytes.limit {
            return Err(self.halt(Stop::Bytes(self.allowance.bytes.clone())));
        }
        let ratio = u64::from(self.allowance.ratio);
        if ratio > 0 && self.produced > RATIO_GRACE && self.produced > self.compressed.get().saturating_mul(ratio) {
            return Err(self.halt(Stop::Ratio(self.allowance.ratio)));
        }
        if self.produced >= self.next_client_check {
            self.next_client_check = self.produced.saturating_add(CLIENT_CHECK_EVERY);
            if (self.abandoned)() {
                return Err(self.halt(Stop::Abandoned));
            }
        }
        Ok(n)
    }
}

/// Counts tar entries against an allowance.
pub struct EntryCount<'a> {
    pub seen: u64,
    bound: &'a Bound,
}

impl<'a> EntryCount<'a> {
    pub fn new(bound: &'a Bound) -> Self {
        EntryCount { seen: 0, bound }
    }

    /// One more entry; an error once beyond the bound.
    pub fn add(&mut self, what: &str) -> Result<(), ImageError> {
        self.seen = self.seen.saturating_add(1);
        if self.seen > self.bound.limit {
            return Err(Stop::Entries(self.bound.clone()).into_error(what));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    fn allowance(bytes: u64, ratio: u32) -> Allowance {
        Allowance { bytes: Bound { limit: bytes, rule: "test cap".into() }, entries: Bound::unlimited(), ratio }
    }

    #[test]
    fn meter_stops_past_its_bytes_and_says_why() {
        let (compressed, stop) = (Cell::new(u64::MAX), Cell::new(None));
        let a = allowance(1000, 0);
        let mut m = Meter::new(&[7u8; 4096][..], &a, &compressed, &never, &stop);
        let mut out = Vec::new();
        assert!(m.read_to_end(&mut out).is_err());
        assert!(out.len() <= 1000, "{} bytes passed", out.len());
        let err = stop.take().unwrap().into_error("layer x").to_string();
        assert_eq!(err, "layer x: unpacks to more than 1000 bytes, its budget under test cap");
    }

    #[test]
    fn meter_ratio_applies_only_beyond_the_grace() {
        let zeros = io::repeat(0).take(RATIO_GRACE + (4 << 20));
        let (compressed, stop) = (Cell::new(1 << 10), Cell::new(None));
        let a = allowance(u64::MAX, 100);
        let mut m = Meter::new(zeros, &a, &compressed, &never, &stop);
        let passed = io::copy(&mut m, &mut io::sink()).map(|_| ()).unwrap_err();
        assert!(passed.to_string().contains("Ratio"), "{passed}");
        assert_eq!(stop.take(), Some(Stop::Ratio(100)));
        // The same bytes from an honest source (as many in as out) pass.
        let honest = Cell::new(u64::MAX);
        let mut m = Meter::new(io::repeat(0).take(RATIO_GRACE + (4 << 20)), &a, &honest, &never, &stop);
        assert_eq!(io::copy(&mut m, &mut io::sink()).unwrap(), RATIO_GRACE + (4 << 20));
        assert_eq!(stop.take(), None);
    }

    #[test]
    fn meter_notices_a_departed_client() {
        let (compressed, stop) = (Cell::new(u64::MAX), Cell::new(None));
        let a = allowance(u64::MAX, 0);
        let gone = || true;
        let mut m = Meter::new(io::repeat(1).take(8 << 20), &a, &compressed, &gone, &stop);
        let mut counted = 0u64;
        let mut buf = [0u8; 8192];
        while let Ok(n) = m.read(&mut buf) {
            counted += n as u64;
            assert!(n > 0, "the stream must not end normally");
        }
        assert_eq!(counted, CLIENT_CHECK_EVERY - 8192, "stopped at the first check");
        assert_eq!(stop.take(), Some(Stop::Abandoned));
    }

    #[test]
    fn budget_takes_the_tightest_bound_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings =
            ImageSettings { max_layer_bytes: Some(300), max_image_bytes: Some(500), ..ImageSettings::default() };
        let mut b = Budget::new(dir.path(), &settings, &never).unwrap();
        assert_eq!(b.layer().bytes, Bound { limit: 300, rule: "images.max_layer_bytes".into() });
        b.charge(300, 3, true, true);
        let next = b.layer_written();
        assert_eq!(next.bytes.limit, 200);
        assert!(next.bytes.rule.starts_with("images.max_image_bytes (500 for the whole image, 300 used)"));
        assert_eq!(next.ratio, 100);
        let archive = b.archive();
        assert!(archive.bytes.rule.starts_with("images.free_space_percent (80% of the "), "{}", archive.bytes.rule);
        assert!(archive.bytes.limit < u64::MAX);
        b.next_image();
        assert_eq!(b.layer().bytes.limit, 300, "the next image of the archive has a budget of its own");
    }
}
