//! The HTTP side: asks each configured BBB API (or the one the mapping names) for a meeting with
//! `getMeetingInfo`, bounded in time and answer size.

use super::checksum::signed_url;
use super::xml::{parse, Answer};
use super::{FoundMeeting, LookupError, MeetingDirectory};
use crate::config::BbbApiConfig;
use crate::routing::ConferenceId;
use crate::store::live::MeetingLookup;

/// The largest API answer read (a getMeetingInfo of a big meeting lists every attendee).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// The configured `[[bbb_api]]` endpoints and one HTTP client for all.
pub struct BbbApis {
    /// The endpoints, in config order.
    apis: Vec<BbbApiConfig>,
    /// Shared connection pool.
    http: reqwest::Client,
}

impl BbbApis {
    /// A directory over `apis`.
    pub fn new(apis: Vec<BbbApiConfig>) -> BbbApis {
        let http = reqwest::Client::builder()
            .user_agent("dialin")
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        BbbApis { apis, http }
    }

    /// Asks one API about `meeting_id`: `Ok(Some)` if it runs there, `Ok(None)` if the API does
    /// not know it or it is not running.
    async fn ask(
        &self,
        api: &BbbApiConfig,
        meeting_id: &str,
    ) -> Result<Option<String>, LookupError> {
        let url = signed_url(
            &api.url,
            api.checksum,
            &api.secret,
            "getMeetingInfo",
            &[("meetingID", meeting_id)],
        );
        let http_err = |reason: String| LookupError::Http {
            url: api.url.clone(),
            reason,
        };
        let mut response = self
            .http
            .get(&url)
            .timeout(api.timeout)
            .send()
            .await
            .map_err(|e| http_err(describe(e)))?;
        if !response.status().is_success() {
            return Err(http_err(format!("HTTP status {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| http_err(describe(e)))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(http_err("answer larger than 4 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        let bad = |reason: String| LookupError::Response {
            url: api.url.clone(),
            reason,
        };
        match parse(&text).map_err(bad)? {
            Answer::Failed(key) if key == "notFound" => Ok(None),
            Answer::Failed(key) if key == "checksumError" => Err(bad(
                "checksumError: check the secret and the checksum algorithm of this [[bbb_api]]"
                    .into(),
            )),
            Answer::Failed(key) => Err(bad(format!("FAILED ({key})"))),
            Answer::Meetings(ms) => Ok(ms
                .into_iter()
                .find(|m| m.meeting_id == meeting_id && m.running)
                .map(|m| m.voice_bridge)),
        }
    }
}

/// A reqwest error without its URL (the URL's query holds the meeting ID and checksum).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.without_url().to_string()
    }
}

#[async_trait::async_trait]
impl MeetingDirectory for BbbApis {
    async fn voice_bridge(
        &self,
        lookup: &MeetingLookup,
    ) -> Result<Option<FoundMeeting>, LookupError> {
        let candidates: Vec<&BbbApiConfig> = self
            .apis
            .iter()
            .filter(|a| lookup.server.is_none() || a.server == lookup.server)
            .collect();
        if candidates.is_empty() {
            return Err(LookupError::NoApi);
        }
        let mut last_error = None;
        for api in candidates {
            match self.ask(api, &lookup.meeting_id).await {
                Ok(Some(vb))
                    if vb.bytes().all(|b| b.is_ascii_digit()) && (1..=20).contains(&vb.len()) =>
                {
                    return Ok(Some(FoundMeeting {
                        conference: ConferenceId(vb),
                        server: lookup.server.clone().or_else(|| api.server.clone()),
                    }))
                }
                Ok(Some(_)) => {
                    last_error = Some(LookupError::Response {
                        url: api.url.clone(),
                        reason: "the voiceBridge is not a number".into(),
                    })
                }
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}
