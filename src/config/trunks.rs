//! `[[trunks]]` (named trunks with their own addresses and limits) and `[limits]` (overload and
//! flood protection).

use std::collections::HashSet;

use super::error::Problems;
use super::reader::Section;
use super::values::{parse_duration, valid_server_name};
use super::{LimitsConfig, NamedTrunk};
use crate::sip::acl::IpNet;

/// `[[trunks]]`.
pub(super) fn trunks(root: &Section<'_>, p: &mut Problems<'_>) -> Vec<NamedTrunk> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for s in root.tables(p, "trunks", &["name", "allow", "max_calls"]) {
        let name = s.parsed(p, "name", |t| {
            valid_server_name(t).then(|| t.to_string()).ok_or_else(|| {
                "must be 1 to 32 characters of a-z, 0-9, '_' and '-', like \"provider1\"".into()
            })
        });
        if !s.has("name") {
            let message = "missing; give every trunk a unique name, like name = \"provider1\"";
            p.push(s.line, s.path_of("name"), message);
        }
        let mut allow = Vec::new();
        match s.strings(p, "allow") {
            Some(list) => {
                for entry in list {
                    match entry.value.parse::<IpNet>() {
                        Ok(net) => allow.push(net),
                        Err(e) => p.push(entry.line, entry.path, e.to_string()),
                    }
                }
            }
            None if !s.has("allow") => {}
            None => {}
        }
        if allow.is_empty() && !s.has("allow") {
            let message = "missing; list the provider's networks for this trunk, like allow = [\"192.0.2.0/24\"]";
            p.push(s.line, s.path_of("allow"), message);
        }
        let max_calls = s
            .integer(p, "max_calls", 1..=100_000)
            .map(|v| v.value as usize);
        let Some(name) = name else { continue };
        if !names.insert(name.value.clone()) {
            let message = "another trunk already has this name; give every trunk a unique name";
            p.push(name.line, name.path, message);
            continue;
        }
        if !allow.is_empty() {
            out.push(NamedTrunk {
                name: name.value,
                allow,
                max_calls,
            });
        }
    }
    out
}

/// `[limits]`.
pub(super) fn limits(root: &Section<'_>, p: &mut Problems<'_>) -> LimitsConfig {
    let s = root.table(
        p,
        "limits",
        &[
            "max_calls",
            "max_ivr_calls",
            "retry_after",
            "sip_rate",
            "sip_burst",
        ],
    );
    let mut c = LimitsConfig::default();
    if let Some(v) = s.integer(p, "max_calls", 1..=100_000) {
        c.max_calls = v.value as usize;
    }
    if let Some(v) = s.integer(p, "max_ivr_calls", 1..=100_000) {
        c.max_ivr_calls = v.value as usize;
    }
    if let Some(v) = s.parsed(p, "retry_after", |t| {
        let d = parse_duration(t)?;
        if d.subsec_millis() != 0 || d.as_secs() > 3600 {
            return Err("must be whole seconds from 1s to 1h, like \"10s\"".into());
        }
        Ok(d)
    }) {
        c.retry_after = v.value;
    }
    if let Some(v) = s.integer(p, "sip_rate", 1..=1_000_000) {
        c.sip_rate = v.value as u32;
    }
    if let Some(v) = s.integer(p, "sip_burst", 1..=1_000_000) {
        c.sip_burst = v.value as u32;
    }
    c
}
