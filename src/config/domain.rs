//! What the configuration hands each domain module, in that module's own settings types.
//!
//! The import direction is one way: `config` turns the file into the domain's types, and the
//! domain modules (`routing`, `store`, `esl`, `privacy`, `sip`) never import `config`. That keeps the
//! module graph acyclic (issue 21; `module_graph_tests` in the crate root checks it).

use super::{Config, StoreConfig};
use crate::ids::ServerName;
use crate::routing::RoutingSettings;
use crate::sip::acl::{IpNet, SourceAcl};
use crate::sip::trunks::TrunkTable;
use crate::store::location::Location;
use crate::store::model::Rules;
use crate::store::StoreError;

impl Config {
    /// Routing's view of the file: the echo PIN, `[[pins]]`, `routing.pin_is_conference`, the
    /// default server (`routing.default_server`, else the only server) and every server.
    pub fn routing_settings(&self) -> RoutingSettings {
        RoutingSettings {
            echo_pin: self.ivr.echo_pin.clone(),
            pins: self
                .pins
                .iter()
                .map(|m| {
                    let server = m.server.as_deref().map(ServerName::new);
                    (m.pin.clone(), m.conference.clone(), server)
                })
                .collect(),
            pin_is_conference: self.routing.pin_is_conference,
            default_server: self.default_server().map(|s| s.name.clone()),
            servers: self
                .servers
                .iter()
                .map(|s| (s.name.clone(), s.sip))
                .collect(),
        }
    }

    /// The trunks' source ACLs: each `[[trunks]]` entry's `allow`, plus its registrar's address
    /// when it registers (calls for the registration come from there), then `[trunk] allow`.
    pub fn trunk_table(&self) -> TrunkTable {
        let named = self
            .trunks
            .iter()
            .map(|t| {
                let mut nets = t.allow.clone();
                if let Some(r) = &t.register {
                    let ip = r.registrar_addr.ip();
                    let bits = if ip.is_ipv4() { 32 } else { 128 };
                    nets.extend(IpNet::new(ip, bits));
                }
                (t.name.clone(), SourceAcl::new(nets))
            })
            .collect();
        TrunkTable::new(named, self.trunk.acl())
    }

    /// What a valid PIN-store mapping must respect: the PIN length, the echo PIN and the
    /// `[[pins]]` PINs (not mappable), and the `[[servers]]` names.
    pub fn store_rules(&self) -> Rules {
        Rules {
            pin_digits: self.ivr.pin_min_digits..=self.ivr.pin_max_digits,
            echo_pin: self.ivr.echo_pin.clone(),
            servers: self.servers.iter().map(|s| s.name.to_string()).collect(),
            reserved: self.pins.iter().map(|p| p.pin.clone()).collect(),
        }
    }
}

impl StoreConfig {
    /// The location `[store]` names, or the default ([`Location::default_file`]).
    pub fn location(&self) -> Result<Location, StoreError> {
        match &self.url {
            Some(url) => Location::configured(url, self.url_key),
            None => Location::default_file(),
        }
    }
}
