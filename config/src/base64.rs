//! Base64 as Go's `encoding/json` reads and writes `[]byte` fields (Secret `data`,
//! ConfigMap `binaryData`): the standard alphabet with padding; decoding skips `\r` and
//! `\n` as Go's decoder does, and names the first bad byte as Go does
//! (`illegal base64 data at input byte 4`).

use serde::de::{self, Deserialize, Deserializer};
use serde::{Serialize, Serializer};
use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` with the standard alphabet and padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Where decoding failed: the offset of the first byte that cannot be base64 there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IllegalByte(pub usize);

impl fmt::Display for IllegalByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "illegal base64 data at input byte {}", self.0)
    }
}

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Decodes padded standard base64, ignoring line breaks.
pub fn decode(text: &str) -> Result<Vec<u8>, IllegalByte> {
    // (offset in the input, byte) of every significant byte.
    let significant: Vec<(usize, u8)> = text.bytes().enumerate().filter(|(_, c)| *c != b'\r' && *c != b'\n').collect();
    let mut out = Vec::with_capacity(significant.len() / 4 * 3);
    for (q, quantum) in significant.chunks(4).enumerate() {
        let last = (q + 1) * 4 >= significant.len();
        let mut n: u32 = 0;
        let mut data = 0usize;
        for (i, &(offset, c)) in quantum.iter().enumerate() {
            if c == b'=' {
                // Padding only in the last quantum, after at least two symbols, through its end.
                if !last || i < 2 || quantum.len() != 4 || quantum[i..].iter().any(|&(_, p)| p != b'=') {
                    return Err(IllegalByte(offset));
                }
                break;
            }
            let v = value_of(c).ok_or(IllegalByte(offset))?;
            n |= v << (18 - 6 * i);
            data += 1;
        }
        if quantum.len() < 4 && data == quantum.len() {
            // A short final quantum without padding: Go names the quantum's first byte.
            return Err(IllegalByte(quantum[0].0));
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        match data {
            4 => out.extend_from_slice(&bytes),
            3 => out.extend_from_slice(&bytes[..2]),
            2 => out.push(bytes[0]),
            _ => return Err(IllegalByte(quantum[data].0)),
        }
    }
    Ok(out)
}

/// Bytes carried in JSON as base64 text, as Kubernetes' `[]byte` fields are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Base64Bytes(pub Vec<u8>);

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Base64Bytes, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Base64Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Base64Bytes, E> {
                decode(v).map(Base64Bytes).map_err(E::custom)
            }
            // Go decodes a JSON null into an empty []byte.
            fn visit_unit<E: de::Error>(self) -> Result<Base64Bytes, E> {
                Ok(Base64Bytes::default())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes, "{len}");
        }
        assert_eq!(encode(b"admin"), "YWRtaW4=");
        assert_eq!(encode(b"1f2d1e2e67df"), "MWYyZDFlMmU2N2Rm");
    }

    #[test]
    fn bad_input_names_the_byte_as_go_does() {
        assert_eq!(decode("YWRtaW4"), Err(IllegalByte(4)));
        assert_eq!(decode("!!!!"), Err(IllegalByte(0)));
        assert_eq!(decode("YW=taW4="), Err(IllegalByte(2)));
        assert_eq!(decode("YQ==YQ=="), Err(IllegalByte(2)));
        assert_eq!(decode("YWRt\naW4=").unwrap(), b"admin");
        assert_eq!(decode("").unwrap(), b"");
    }
}
