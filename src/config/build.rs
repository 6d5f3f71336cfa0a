//! Building a [`Config`] from TOML text: one function per section (next to that section's
//! types, in the file for its area), each recording every problem it finds and falling back to
//! the default so later checks still run.

use toml_edit::ImDocument;

use super::error::{ConfigErrors, Problems};
use super::reader::Section;
use super::Config;

/// Parses and validates `text`; see [`Config::from_toml`].
pub(super) fn build(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => return Err(syntax_error(text, origin, &e)),
    };
    let mut p = Problems::new(text);
    let root = Section::root(doc.as_table());
    root.reject_unknown(
        &mut p,
        &[
            "sip",
            "media",
            "trunk",
            "trunks",
            "ivr",
            "servers",
            "routing",
            "pins",
            "limits",
            "privacy",
            "abuse",
            "esl",
            "probes",
            "store",
            "admin",
            "bbb_api",
            "lifecycle",
        ],
    );
    let sip = super::sip::sip(&root, &mut p);
    let media = super::sip::media(&root, &mut p);
    let trunk = super::sip::trunk(&root, &mut p);
    let ivr = super::ivr::ivr(&root, &mut p);
    let (servers, declared) = super::routing::servers(&root, &mut p);
    let routing = super::routing::routing(&root, &mut p, &declared);
    let pins = super::routing::pins(&root, &mut p, &ivr, &declared, &routing);
    let privacy = super::privacy::privacy(&root, &mut p);
    let abuse = super::privacy::abuse(&root, &mut p);
    let esl = super::esl::section(&root, &mut p);
    let probes = super::probes::section(&root, &mut p);
    let store = super::store::section(&root, &mut p);
    let admin = super::admin::admin(&root, &mut p);
    let bbb_api = super::admin::bbb_api(&root, &mut p, &declared);
    let trunks = super::trunks::trunks(&root, &mut p);
    let limits = super::trunks::limits(&root, &mut p);
    let lifecycle = super::ops::lifecycle(&root, &mut p);
    p.finish(
        origin,
        Config {
            sip,
            media,
            trunk,
            ivr,
            servers,
            routing,
            pins,
            privacy,
            abuse,
            esl,
            probes,
            store,
            admin,
            bbb_api,
            trunks,
            limits,
            lifecycle,
        },
    )
}

/// A TOML syntax error as one problem at its line. Only the parser's message is used, not its
/// rendering of the offending line, which could hold a PIN.
fn syntax_error(text: &str, origin: &str, e: &toml_edit::TomlError) -> ConfigErrors {
    let p = Problems::new(text);
    let line = p.line(e.span());
    let what = e.message().trim().replace('\n', "; ");
    let message =
        format!("TOML syntax error: {what}; fix the syntax on this line (strings need quotes)");
    let mut errors = ConfigErrors::whole_file(origin, message);
    errors.errors[0].line = line;
    errors
}
