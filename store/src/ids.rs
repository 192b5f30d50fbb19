//! Random identities: object uids (UUID v4) and `generateName` suffixes.

use std::fs::File;
use std::io::{self, Read};

/// Kubernetes' `utilrand.String` alphabet: no vowels (no accidental words) and no
/// look-alike characters.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// How many characters `generateName` appends, as Kubernetes does.
pub(crate) const SUFFIX_LEN: usize = 5;

fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| io::Error::new(e.kind(), format!("reading /dev/urandom: {e}")))?;
    Ok(buf)
}

/// A fresh random uid in the UUID v4 text form (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub(crate) fn new_uid() -> io::Result<String> {
    let mut b: [u8; 16] = random_bytes()?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

/// `prefix` followed by five random characters from Kubernetes' name alphabet.
pub(crate) fn generated_name(prefix: &str) -> io::Result<String> {
    // Rejection sampling keeps every character equally likely: 243 = 27 * 9.
    let limit = (256 / NAME_ALPHABET.len() * NAME_ALPHABET.len()) as u8;
    let mut name = String::with_capacity(prefix.len() + SUFFIX_LEN);
    name.push_str(prefix);
    let mut have = 0;
    while have < SUFFIX_LEN {
        for byte in random_bytes::<16>()? {
            if byte < limit && have < SUFFIX_LEN {
                name.push(NAME_ALPHABET[byte as usize % NAME_ALPHABET.len()] as char);
                have += 1;
            }
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_a_version_4_uuid() {
        let uid = new_uid().unwrap();
        let parts: Vec<&str> = uid.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'), "{uid}");
        assert!("89ab".contains(&parts[3][..1]), "{uid}");
        assert_ne!(uid, new_uid().unwrap());
    }

    #[test]
    fn generated_names_use_the_kubernetes_alphabet() {
        let name = generated_name("web-").unwrap();
        assert_eq!(name.len(), 4 + SUFFIX_LEN);
        assert!(name[4..].bytes().all(|c| NAME_ALPHABET.contains(&c)), "{name}");
    }
}
