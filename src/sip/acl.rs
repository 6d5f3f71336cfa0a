//! The source ACL for the trunk: which networks may send dialin an INVITE.
//!
//! dialin must not become an open relay into BBB conferences, so INVITEs are accepted only from
//! the provider's networks listed in `[trunk] allow`. The check runs for every request, so
//! [`SourceAcl::allows`] does no allocation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a network could not be parsed; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AclError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("not an IP address; write a network like \"10.0.0.0/8\", \"2001:db8::/32\" or a single address like \"192.0.2.10\"")]
    BadAddress,
    /// The part after `/` is not a number within the address family's bit length.
    #[error("bad prefix length; use /0 to /32 for IPv4 and /0 to /128 for IPv6")]
    BadPrefix,
}

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `::1/128`).
///
/// It exists so the trunk ACL can be written the way operators write firewall rules. A bare
/// address is a host route (`/32` or `/128`). Host bits are accepted and cleared
/// (`10.1.2.3/8` becomes `10.0.0.0/8`) because the intent is unambiguous. An IPv4-mapped IPv6
/// network (`::ffff:10.0.0.0/104`) is stored as the IPv4 network it denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The network address, host bits cleared.
    addr: IpAddr,
    /// The prefix length in bits.
    prefix: u8,
}

impl IpNet {
    /// Builds a network from an address and prefix length, clearing host bits; `None` if the
    /// prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        match addr {
            IpAddr::V4(v4) if prefix <= 32 => Some(IpNet {
                addr: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
                prefix,
            }),
            IpAddr::V6(v6) => {
                if prefix > 128 {
                    return None;
                }
                match v6.to_ipv4_mapped() {
                    Some(v4) if prefix >= 96 => IpNet::new(IpAddr::V4(v4), prefix - 96),
                    _ => Some(IpNet {
                        addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
                        prefix,
                    }),
                }
            }
            IpAddr::V4(_) => None,
        }
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this network. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as seen
    /// on dual-stack sockets) match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Whether this network matches every address of its family (`0.0.0.0/0`, `::/0`), which
    /// `dialin check` warns about.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

/// The netmask for an IPv4 prefix length (0..=32).
fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The netmask for an IPv6 prefix length (0..=128).
fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = AclError;

    fn from_str(s: &str) -> Result<IpNet, AclError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| AclError::BadAddress)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().map_err(|_| AclError::BadPrefix)?
            }
            Some(_) => return Err(AclError::BadPrefix),
        };
        IpNet::new(addr, prefix).ok_or(AclError::BadPrefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The networks allowed to send INVITEs on the trunk. An empty list allows nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceAcl {
    /// The allowed networks, checked in order.
    pub nets: Vec<IpNet>,
}

impl SourceAcl {
    /// An ACL allowing exactly these networks.
    pub fn new(nets: Vec<IpNet>) -> SourceAcl {
        SourceAcl { nets }
    }

    /// Whether a request from `ip` may be handled. Does not allocate.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        let cases = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.0.2.10", "192.0.2.10/32"),
            (" 192.0.2.10/32 ", "192.0.2.10/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::1/128", "::1/128"),
            ("::1", "::1/128"),
            ("2001:db8::1/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("::ffff:10.1.0.0/104", "10.0.0.0/8"),
            ("::ffff:192.0.2.1", "192.0.2.1/32"),
        ];
        for (input, want) in cases {
            let net: IpNet = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(net.to_string(), want, "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        let cases = [
            ("", AclError::BadAddress),
            ("example.org/8", AclError::BadAddress),
            ("10.0.0/8", AclError::BadAddress),
            ("10.0.0.0/33", AclError::BadPrefix),
            ("10.0.0.0/", AclError::BadPrefix),
            ("10.0.0.0/-1", AclError::BadPrefix),
            ("10.0.0.0/+8", AclError::BadPrefix),
            ("10.0.0.0/8/8", AclError::BadPrefix),
            ("::/129", AclError::BadPrefix),
            ("::/999999", AclError::BadPrefix),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<IpNet>(), Err(want), "{input}");
        }
    }

    #[test]
    fn contains() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("10.0.0.0/8", "::ffff:11.0.0.1", false),
            ("10.0.0.0/8", "::1", false),
            ("192.0.2.10", "192.0.2.10", true),
            ("192.0.2.10", "192.0.2.11", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "192.0.2.1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::1/128", "::1", true),
            ("::1/128", "127.0.0.1", false),
        ];
        for (net, addr, want) in cases {
            let n: IpNet = net.parse().unwrap();
            assert_eq!(n.contains(ip(addr)), want, "{net} ∋ {addr}");
        }
    }

    #[test]
    fn source_acl() {
        let acl = SourceAcl::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]);
        assert!(acl.allows(ip("127.0.0.1")));
        assert!(acl.allows(ip("2001:db8::5")));
        assert!(!acl.allows(ip("192.0.2.1")));
        assert!(!SourceAcl::default().allows(ip("127.0.0.1")));
    }

    #[test]
    fn deserializes_from_string() {
        #[derive(serde::Deserialize)]
        struct T {
            allow: Vec<IpNet>,
        }
        let t: T = toml::from_str(r#"allow = ["10.0.0.0/8", "::1"]"#).unwrap();
        assert_eq!(t.allow.len(), 2);
        assert!(toml::from_str::<T>(r#"allow = ["nonsense"]"#).is_err());
    }
}
