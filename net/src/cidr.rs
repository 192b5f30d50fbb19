//! IPv4 CIDR blocks: the pod range handed to CNI and the range ClusterIPs come from.

use std::fmt;
use std::net::{AddrParseError, Ipv4Addr};
use std::num::ParseIntError;
use std::str::FromStr;

/// An IPv4 block such as `10.96.0.0/16`; the base is kept with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    base: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// The block of `addr/prefix` (host bits of `addr` are dropped).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Cidr, CidrError> {
        if prefix > 32 {
            return Err(CidrError::PrefixTooLong { text: None, prefix });
        }
        Ok(Ipv4Cidr { base: u32::from(addr) & mask(prefix), prefix })
    }

    /// The first address (network address).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses the block spans.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `addr` lies inside the block.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == self.base
    }

    /// The address at `offset` from the network address, if inside the block.
    pub fn nth(&self, offset: u64) -> Option<Ipv4Addr> {
        (offset < self.size()).then(|| Ipv4Addr::from(self.base + offset as u32))
    }

    /// How far `addr` is from the network address, if inside the block.
    pub fn offset_of(&self, addr: Ipv4Addr) -> Option<u64> {
        self.contains(addr).then(|| u64::from(u32::from(addr) - self.base))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Ipv4Cidr, CidrError> {
        let text = || s.to_string();
        let (addr, prefix) = s.split_once('/').ok_or_else(|| CidrError::Form { text: text() })?;
        let addr: Ipv4Addr = addr.parse().map_err(|source| CidrError::Address { text: text(), source })?;
        let prefix: u8 = prefix.parse().map_err(|source| CidrError::Prefix { text: text(), source })?;
        Ipv4Cidr::new(addr, prefix).map_err(|_| CidrError::PrefixTooLong { text: Some(text()), prefix })
    }
}

/// A block that is not one: the text as written, and which part is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// No `/PREFIX`.
    Form {
        text: String,
    },
    Address {
        text: String,
        source: AddrParseError,
    },
    Prefix {
        text: String,
        source: ParseIntError,
    },
    /// A prefix over 32 bits (`text` when parsed from text).
    PrefixTooLong {
        text: Option<String>,
        prefix: u8,
    },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::Form { text } => write!(f, "CIDR {text:?}: expected ADDRESS/PREFIX"),
            CidrError::Address { text, source } => {
                let addr = text.split_once('/').map_or(text.as_str(), |(a, _)| a);
                write!(f, "CIDR {text:?}: address {addr:?}: {source}")
            }
            CidrError::Prefix { text, source } => {
                let prefix = text.split_once('/').map_or("", |(_, p)| p);
                write!(f, "CIDR {text:?}: prefix {prefix:?}: {source}")
            }
            CidrError::PrefixTooLong { text: Some(text), prefix } => {
                write!(f, "CIDR {text:?}: prefix length {prefix} is longer than 32")
            }
            CidrError::PrefixTooLong { text: None, prefix } => write!(f, "prefix length {prefix} is longer than 32"),
        }
    }
}

impl std::error::Error for CidrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CidrError::Address { source, .. } => Some(source),
            CidrError::Prefix { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normalises_and_indexes() {
        let c: Ipv4Cidr = "10.96.3.4/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.96.0.0/16");
        assert_eq!(c.size(), 65536);
        assert!(c.contains("10.96.255.255".parse().unwrap()));
        assert!(!c.contains("10.97.0.0".parse().unwrap()));
        assert_eq!(c.nth(10), Some("10.96.0.10".parse().unwrap()));
        assert_eq!(c.nth(65536), None);
        assert_eq!(c.offset_of("10.96.1.0".parse().unwrap()), Some(256));
    }

    #[test]
    fn refuses_malformed_blocks_naming_the_part() {
        let error = |s: &str| s.parse::<Ipv4Cidr>().unwrap_err().to_string();
        assert!(error("10.96.0.0").contains("ADDRESS/PREFIX"));
        assert!(error("10.96.0.0/33").contains("longer than 32"));
        assert!(error("10.96.0/16").contains("address"));
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().size(), 1 << 32);
    }
}
