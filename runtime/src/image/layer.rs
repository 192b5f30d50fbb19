//! One layer blob, streamed once: hashed as stored (blob digest), decompressed, metered
//! against its allowance, hashed again (diff id) and unpacked, so both digests are checked
//! without a second read and a bomb stops at its budget.

use super::budget::{Allowance, Meter};
use super::compression::decompressed;
use super::digest::{Digest, HashingReader};
use super::error::ImageError;
use super::unpack::{unpack_layer, Unpacked};
use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// What streaming a layer blob measured.
pub struct LayerDigests {
    /// sha256 of the bytes as given (compressed or not).
    pub blob: Digest,
    /// sha256 of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar stream.
    pub uncompressed: u64,
    /// What was unpacked (nothing when only verifying).
    pub unpacked: Unpacked,
}

/// Streams `input` into `dest` (or only through the hashes when `dest` is None, for a
/// layer already stored) and returns the digests measured on the way. The uncompressed
/// stream stops once it exceeds `allowance` or `abandoned` says the client has gone.
pub fn stream_layer(
    input: impl Read,
    dest: Option<&Path>,
    privileged: bool,
    allowance: &Allowance,
    abandoned: &dyn Fn() -> bool,
) -> Result<LayerDigests, ImageError> {
    let (mut blob_hasher, mut diff_hasher) = (Sha256::new(), Sha256::new());
    let (blob_len, diff_len) = (Cell::new(0u64), Cell::new(0u64));
    let stop = Cell::new(None);
    let mut unpacked = Unpacked::default();
    let stream_err = |e: io::Error| ImageError::Io { context: "reading layer stream".into(), source: e };
    let streamed = (|| {
        let mut blob = HashingReader::new(input, &mut blob_hasher, &blob_len);
        {
            let decoder = decompressed(BufReader::new(&mut blob)).map_err(stream_err)?;
            let metered = Meter::new(decoder, allowance, &blob_len, abandoned, &stop);
            let mut tar = HashingReader::new(metered, &mut diff_hasher, &diff_len);
            if let Some(dest) = dest {
                unpacked = unpack_layer(&mut tar, dest, privileged, &allowance.entries)?;
            }
            // The tar reader stops at the end-of-archive blocks; the digest covers all bytes.
            io::copy(&mut tar, &mut io::sink()).map_err(stream_err)?;
        }
        io::copy(&mut blob, &mut io::sink()).map_err(stream_err)?;
        Ok(())
    })();
    // The meter's reason outranks whatever the tar reader made of the error it returned.
    if let Some(why) = stop.take() {
        return Err(why.into_error("tar stream"));
    }
    streamed?;
    Ok(LayerDigests {
        blob: Digest::from_hasher(blob_hasher),
        diff_id: Digest::from_hasher(diff_hasher),
        uncompressed: diff_len.get(),
        unpacked,
    })
}
