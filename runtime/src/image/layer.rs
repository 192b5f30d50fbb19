//! One layer blob, streamed once: hashed as stored (blob digest), decompressed, hashed
//! again (diff id) and unpacked, so both digests are checked without a second read.

use super::compression::decompressed;
use super::digest::{Digest, HashingReader};
use super::error::ImageError;
use super::unpack::unpack_layer;
use sha2::{Digest as _, Sha256};
use std::io::{self, BufReader, Read};
use std::path::Path;

/// What streaming a layer blob measured.
pub struct LayerDigests {
    /// sha256 of the bytes as given (compressed or not).
    pub blob: Digest,
    /// sha256 of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    /// Bytes of regular files unpacked (0 when only verifying).
    pub size: u64,
}

/// Streams `input` into `dest` (or only through the hashes when `dest` is None, for a
/// layer already stored) and returns the digests measured on the way.
pub fn stream_layer(input: impl Read, dest: Option<&Path>, privileged: bool) -> Result<LayerDigests, ImageError> {
    let (mut blob_hasher, mut diff_hasher) = (Sha256::new(), Sha256::new());
    let (mut blob_len, mut diff_len) = (0u64, 0u64);
    let mut size = 0;
    let stream_err = |e: io::Error| ImageError::Io { context: "reading layer stream".into(), source: e };
    {
        let mut blob = HashingReader::new(input, &mut blob_hasher, &mut blob_len);
        {
            let decoder = decompressed(BufReader::new(&mut blob)).map_err(stream_err)?;
            let mut tar = HashingReader::new(decoder, &mut diff_hasher, &mut diff_len);
            if let Some(dest) = dest {
                size = unpack_layer(&mut tar, dest, privileged)?;
            }
            // The tar reader stops at the end-of-archive blocks; the digest covers all bytes.
            io::copy(&mut tar, &mut io::sink()).map_err(stream_err)?;
        }
        io::copy(&mut blob, &mut io::sink()).map_err(stream_err)?;
    }
    Ok(LayerDigests { blob: Digest::from_hasher(blob_hasher), diff_id: Digest::from_hasher(diff_hasher), size })
}
