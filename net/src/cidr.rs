//! IPv4 CIDR blocks: the pod range handed to CNI and the range ClusterIPs come from.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 block such as `10.96.0.0/16`; the base is kept with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    base: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// The block of `addr/prefix` (host bits of `addr` are dropped).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Cidr, String> {
        if prefix > 32 {
            return Err(format!("prefix length {prefix} is longer than 32"));
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
    type Err = String;

    fn from_str(s: &str) -> Result<Ipv4Cidr, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| format!("CIDR {s:?}: expected ADDRESS/PREFIX"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|e| format!("CIDR {s:?}: address {addr:?}: {e}"))?;
        let prefix: u8 = prefix.parse().map_err(|e| format!("CIDR {s:?}: prefix {prefix:?}: {e}"))?;
        Ipv4Cidr::new(addr, prefix).map_err(|e| format!("CIDR {s:?}: {e}"))
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
        assert!("10.96.0.0".parse::<Ipv4Cidr>().unwrap_err().contains("ADDRESS/PREFIX"));
        assert!("10.96.0.0/33".parse::<Ipv4Cidr>().unwrap_err().contains("longer than 32"));
        assert!("10.96.0/16".parse::<Ipv4Cidr>().unwrap_err().contains("address"));
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().size(), 1 << 32);
    }
}
