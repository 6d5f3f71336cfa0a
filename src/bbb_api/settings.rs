//! What a `[[bbb_api]]` entry says, as the BBB API client takes it. The type lives here, with
//! its user; `config` reads the file into it (so `bbb_api` imports nothing of `config`).

use std::time::Duration;

/// The hash BBB's API checksum uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// SHA-1 (older BBB and Scalelite set-ups).
    Sha1,
    /// SHA-256 (BBB 2.6+ default).
    Sha256,
}

/// One `[[bbb_api]]` entry: a BBB server's (or a Scalelite's) API.
#[derive(Clone, PartialEq, Eq)]
pub struct BbbApiConfig {
    /// The API base URL, ending in `/bigbluebutton/api`.
    pub url: String,
    /// The shared secret (`bbb-conf --secret`), from `secret`, `secret_file` or `secret_env`
    /// (read at load time, so a missing one is reported with its key). Never printed.
    pub secret: String,
    /// The `[[servers]]` name whose FreeSWITCH hosts this API's meetings; `None` (Scalelite)
    /// dials the voiceBridge by the default-server rule.
    pub server: Option<String>,
    /// The checksum hash (default SHA-256).
    pub checksum: ChecksumAlgorithm,
    /// How long one API request may take (default 3 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for BbbApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BbbApiConfig")
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("server", &self.server)
            .field("checksum", &self.checksum)
            .field("timeout", &self.timeout)
            .finish()
    }
}
