//! Layer compression, recognized by magic bytes rather than trusted media types:
//! gzip, zstd (possibly several frames) or none.

use flate2::read::MultiGzDecoder;
use ruzstd::{FrameDecoder, StreamingDecoder};
use std::io::{self, BufRead, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A reader of the uncompressed bytes of `input`, whatever its compression.
pub fn decompressed<'a, R: BufRead + 'a>(mut input: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = input.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(MultiGzDecoder::new(input)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Ok(Box::new(ZstdFrames { source: Some(input), decoder: None }))
    } else {
        Ok(Box::new(input))
    }
}

/// Decodes consecutive zstd frames (ruzstd's decoder handles one at a time).
struct ZstdFrames<R: BufRead> {
    source: Option<R>,
    decoder: Option<StreamingDecoder<R, FrameDecoder>>,
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(dec) = &mut self.decoder {
                let n = dec.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.source = self.decoder.take().map(StreamingDecoder::into_inner);
            }
            let Some(mut source) = self.source.take() else { return Ok(0) };
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let dec = StreamingDecoder::new(source)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            self.decoder = Some(dec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn roundtrip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompressed(io::BufReader::new(bytes)).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn plain_and_gzip_are_recognized() {
        let data = b"layer bytes ".repeat(500);
        assert_eq!(roundtrip(&data), data);
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&data).unwrap();
        assert_eq!(roundtrip(&gz.finish().unwrap()), data);
        assert_eq!(roundtrip(b""), b"");
    }

    #[test]
    fn zstd_frames_decode_back_to_back() {
        // `printf ab | zstd -c`: one frame with a raw block and a content checksum.
        let one: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x11, 0x00, 0x00, b'a', b'b', 0x61, 0x4a, 0xd0, 0x92];
        assert_eq!(roundtrip(one), b"ab");
        let two: Vec<u8> = one.iter().chain(one).copied().collect();
        assert_eq!(roundtrip(&two), b"abab");
    }
}
