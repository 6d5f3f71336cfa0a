//! Which trunk a source address belongs to: the named `[[trunks]]` in order, then the default
//! `[trunk] allow`.
//!
//! Providers send calls from a few known addresses; knowing the trunk of a call lets dialin
//! apply that trunk's limits (and, later, its media and transport rules). A lookup allocates
//! nothing, since it runs for every request.

use crate::sip::acl::SourceAcl;
use std::net::IpAddr;

/// The trunks' source ACLs, in match order.
#[derive(Clone, Debug)]
pub struct TrunkTable {
    /// One ACL per `[[trunks]]` entry, in file order, with its name.
    named: Vec<(String, SourceAcl)>,
    /// `[trunk] allow`: sources of no named trunk.
    default: SourceAcl,
}

impl TrunkTable {
    /// Builds the table from named trunks and the default ACL.
    pub fn new(named: Vec<(String, SourceAcl)>, default: SourceAcl) -> TrunkTable {
        TrunkTable { named, default }
    }

    /// The trunk `ip` belongs to, as an index: `0..n` for the named trunks, `n` for the
    /// default trunk; `None` when no trunk allows it.
    pub fn classify(&self, ip: IpAddr) -> Option<usize> {
        self.named
            .iter()
            .position(|(_, acl)| acl.allows(ip))
            .or_else(|| self.default.allows(ip).then_some(self.named.len()))
    }

    /// Whether any trunk allows `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.classify(ip).is_some()
    }

    /// The name of trunk `index` (`"default"` for `[trunk]`), for logs and metric labels.
    pub fn name(&self, index: usize) -> &str {
        self.named
            .get(index)
            .map(|(n, _)| n.as_str())
            .unwrap_or("default")
    }

    /// How many trunks there are, the default one included.
    pub fn len(&self) -> usize {
        self.named.len() + 1
    }

    /// Never empty: the default trunk always exists (its ACL may be empty).
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(nets: &[&str]) -> SourceAcl {
        SourceAcl::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn named_trunks_first_then_the_default() {
        let t = TrunkTable::new(
            vec![
                ("a".into(), acl(&["192.0.2.0/24"])),
                ("b".into(), acl(&["192.0.2.7", "198.51.100.0/24"])),
            ],
            acl(&["127.0.0.0/8"]),
        );
        let table = [
            ("192.0.2.7", Some(0)), // first match wins
            ("198.51.100.1", Some(1)),
            ("127.0.0.2", Some(2)),
            ("203.0.113.1", None),
        ];
        for (ip, want) in table {
            assert_eq!(t.classify(ip.parse().unwrap()), want, "{ip}");
        }
        assert_eq!(t.name(1), "b");
        assert_eq!(t.name(2), "default");
        assert_eq!(t.len(), 3);
    }
}
