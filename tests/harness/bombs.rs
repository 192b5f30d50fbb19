//! Compression bombs, made cheaply: a layer tar holding one file of many GiB of zeros,
//! compressed as repeated gzip members of 16 MiB of zeros (deflate tops out near 1:1032)
//! or as zstd RLE blocks (4 bytes per 128 KiB). The uncompressed stream is never produced
//! here: each piece is compressed once and repeated.

use crate::images::{sha256, MTIME};
use crate::rawtar::files_tar;
use flate2::write::GzEncoder;
use std::io::Write;

/// Zero bytes per gzip member.
const CHUNK: usize = 16 << 20;
/// Bytes per zstd RLE block (the largest block a 128 KiB window allows).
const RLE_BLOCK: u64 = 128 << 10;

/// The header of a tar entry `name`: a regular file of `size` bytes (GNU base-256 beyond
/// 8 GiB).
fn tar_header(name: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).expect("bomb entry name");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(MTIME);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// The length of the whole tar stream of one `size`-byte file: header, data padded to a
/// block, end-of-archive blocks (all zeros after the header).
fn tar_len(size: u64) -> u64 {
    512 + size.div_ceil(512) * 512 + 1024
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

/// A gzip stream (concatenated members, which gzip readers take as one stream) of the tar
/// of one file `name` of `size` zero bytes.
pub fn gzip_bomb(name: &str, size: u64) -> Vec<u8> {
    let total = tar_len(size);
    let mut first = tar_header(name, size);
    let first_len = (CHUNK as u64).min(total);
    first.resize(first_len as usize, 0);
    let mut out = gzip(&first);
    let mut left = total - first_len;
    let zeros = gzip(&vec![0u8; CHUNK]);
    while left >= CHUNK as u64 {
        out.extend_from_slice(&zeros);
        left -= CHUNK as u64;
    }
    if left > 0 {
        out.extend_from_slice(&gzip(&vec![0u8; left as usize]));
    }
    out
}

/// One zstd block header: size, type (0 raw, 1 RLE), last flag; 3 bytes little-endian.
fn block_header(size: u64, kind: u64, last: bool) -> [u8; 3] {
    let v = (size << 3) | (kind << 1) | u64::from(last);
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

/// A zstd frame of the tar of one file `name` of `size` zero bytes: the header as a raw
/// block, the zeros as RLE blocks.
pub fn zstd_bomb(name: &str, size: u64) -> Vec<u8> {
    // Magic; frame header descriptor 0 (no content size, no checksum, a window descriptor
    // follows); window 2^(10+7) = 128 KiB.
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    let header = tar_header(name, size);
    let mut left = tar_len(size) - header.len() as u64;
    out.extend_from_slice(&block_header(header.len() as u64, 0, false));
    out.extend_from_slice(&header);
    while left > 0 {
        let n = left.min(RLE_BLOCK);
        left -= n;
        out.extend_from_slice(&block_header(n, 1, left == 0));
        out.push(0);
    }
    out
}

/// An (uncompressed) OCI archive of image `reference` whose only layer blob is `blob`, of
/// media type `media`. Its diff id is not computed (hashing many GiB would take longer than
/// any test): a bomb must be stopped before any digest is checked.
pub fn bomb_image(reference: &str, blob: &[u8], media: &str) -> Vec<u8> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux", "config": { "Cmd": ["sh"] },
        "rootfs": { "type": "layers", "diff_ids": [sha256(b"a diff id nobody computed")] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len() },
        "layers": [{ "mediaType": media, "digest": sha256(blob), "size": blob.len() }],
    }))
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest), "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": reference },
        }],
    });
    let blob_file = |b: &[u8]| (format!("blobs/sha256/{}", &sha256(b)[7..]), b.to_vec());
    files_tar(&[
        ("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        blob_file(blob),
        blob_file(&config),
        blob_file(&manifest),
        ("index.json".into(), serde_json::to_vec(&index).unwrap()),
    ])
}

/// Media types of bomb layers.
pub const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Read;

    /// The first `n` bytes a bomb expands to, and whether it parses as the tar it claims.
    fn head_of(stream: impl Read, n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        stream.take(n).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_small_gzip_bomb_expands_to_exactly_its_tar() {
        let bomb = gzip_bomb("zeros", 40 << 20);
        let mut all = Vec::new();
        MultiGzDecoder::new(&bomb[..]).read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, tar_len(40 << 20));
        let mut archive = tar::Archive::new(&all[..]);
        let mut entries = archive.entries().unwrap();
        let entry = entries.next().unwrap().unwrap();
        assert_eq!((entry.path().unwrap().to_str().unwrap(), entry.size()), ("zeros", 40 << 20));
        assert!(all[512..].iter().all(|&b| b == 0));
        assert!(bomb.len() < 100 << 10, "{} bytes", bomb.len());
    }

    #[test]
    fn a_twenty_gib_gzip_bomb_is_about_twenty_mb() {
        let bomb = gzip_bomb("zeros", 20 << 30);
        assert!((15 << 20..25 << 20).contains(&bomb.len()), "{} bytes", bomb.len());
        let head = head_of(MultiGzDecoder::new(&bomb[..]), 4096);
        assert_eq!(&head[..5], b"zeros");
    }

    #[test]
    fn the_zstd_bomb_is_a_frame_the_tar_reader_accepts() {
        let bomb = zstd_bomb("zeros", (1 << 20) + 7);
        // Decoded by the zstd CLI when present, else checked by structure.
        if crate::images::zstd_available() {
            let mut child = std::process::Command::new("zstd")
                .args(["-d", "-q", "-c"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&bomb).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout.len() as u64, tar_len((1 << 20) + 7));
            assert_eq!(&out.stdout[..5], b"zeros");
        }
        let blocks = (tar_len((1 << 20) + 7) - 512).div_ceil(RLE_BLOCK) as usize;
        assert_eq!(bomb.len(), 6 + 3 + 512 + blocks * 4);
    }
}
