//! The HTTP side: asks each configured BBB API (or the one the mapping names) for a meeting with
//! `getMeetingInfo`, bounded in time and answer size.

use super::checksum::signed_url;
use super::settings::BbbApiConfig;
use super::xml::{parse, Answer};
use super::{BadAnswer, FoundMeeting, HttpFailure, LookupError, MeetingDirectory};
use crate::ids::ConferenceId;
use crate::store::shared_mappings::MeetingLookup;

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
        let http_err = |reason: HttpFailure| LookupError::Http {
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
            return Err(http_err(HttpFailure::Status(response.status().as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| http_err(describe(e)))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(http_err(HttpFailure::TooLarge));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        let bad = |reason: BadAnswer| LookupError::Response {
            url: api.url.clone(),
            reason,
        };
        match parse(&text).map_err(|e| bad(e.into()))? {
            Answer::Failed(key) if key == "notFound" => Ok(None),
            Answer::Failed(key) if key == "checksumError" => Err(bad(BadAnswer::Checksum)),
            Answer::Failed(key) => Err(bad(BadAnswer::Failed(key))),
            Answer::Meetings(ms) => Ok(ms
                .into_iter()
                .find(|m| m.meeting_id == meeting_id && m.running)
                .map(|m| m.voice_bridge)),
        }
    }
}

/// A reqwest error without its URL (the URL's query holds the meeting ID and checksum).
fn describe(e: reqwest::Error) -> HttpFailure {
    if e.is_timeout() {
        HttpFailure::TimedOut
    } else if e.is_connect() {
        HttpFailure::CannotConnect
    } else {
        HttpFailure::Other(e.without_url().to_string())
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
                        reason: BadAnswer::VoiceBridgeNotANumber,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb_api::settings::ChecksumAlgorithm;
    use axum::extract::RawQuery;
    use std::time::Duration;

    const SECRET: &str = "local-test-secret";

    /// A local stand-in BBB API that checks SHA-1 checksums and answers by meeting ID.
    async fn fake_api() -> String {
        let app = axum::Router::new().route(
            "/bigbluebutton/api/getMeetingInfo",
            axum::routing::get(|RawQuery(q): RawQuery| async move {
                let q = q.unwrap_or_default();
                let (query, sum) = q.rsplit_once("&checksum=").unwrap_or((&q, ""));
                let want = super::super::checksum::checksum(ChecksumAlgorithm::Sha1, "getMeetingInfo", query, SECRET);
                let reply = |s: &str| (axum::http::StatusCode::OK, s.to_string());
                if sum != want {
                    return reply("<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey></response>");
                }
                match query {
                    "meetingID=running" => reply(include_str!("fixtures/getMeetingInfo.xml").replace("gbesu6dht08uobpislzqxsizjzihn87cmewqyacs", "running").as_str()),
                    "meetingID=idle" => reply("<response><returncode>SUCCESS</returncode><meetingID>idle</meetingID><voiceBridge>70001</voiceBridge><running>false</running></response>"),
                    "meetingID=slow" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        reply("")
                    }
                    "meetingID=broken" => (axum::http::StatusCode::BAD_GATEWAY, "<html>502</html>".into()),
                    _ => reply(include_str!("fixtures/notFound.xml")),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        format!("http://{addr}/bigbluebutton/api")
    }

    fn api(url: &str, secret: &str) -> BbbApiConfig {
        BbbApiConfig {
            url: url.into(),
            secret: secret.into(),
            server: Some("bbb1".into()),
            checksum: ChecksumAlgorithm::Sha1,
            timeout: Duration::from_millis(500),
        }
    }

    fn lookup(id: &str, server: Option<&str>) -> MeetingLookup {
        MeetingLookup {
            meeting_id: id.into(),
            server: server.map(Into::into),
        }
    }

    #[tokio::test]
    async fn answers_of_a_local_api() {
        let url = fake_api().await;
        let apis = BbbApis::new(vec![api(&url, SECRET)]);
        let found = apis.voice_bridge(&lookup("running", None)).await.unwrap();
        assert_eq!(
            found,
            Some(FoundMeeting {
                conference: ConferenceId("66052".into()),
                server: Some("bbb1".into())
            })
        );
        assert_eq!(
            apis.voice_bridge(&lookup("idle", None)).await.unwrap(),
            None,
            "not running"
        );
        assert_eq!(
            apis.voice_bridge(&lookup("nobody", None)).await.unwrap(),
            None,
            "notFound"
        );
        let e = apis
            .voice_bridge(&lookup("slow", None))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        let e = apis
            .voice_bridge(&lookup("broken", None))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("502"), "{e}");
        assert!(matches!(
            apis.voice_bridge(&lookup("running", Some("bbb2"))).await,
            Err(LookupError::NoApi)
        ));
        let wrong = BbbApis::new(vec![api(&url, "another-secret")]);
        let e = wrong
            .voice_bridge(&lookup("running", None))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("checksumError") && !e.contains("another-secret") && !e.contains("running"),
            "{e}"
        );
        // A failing API does not hide a meeting another API has.
        let two = BbbApis::new(vec![api(&url, "another-secret"), api(&url, SECRET)]);
        assert!(two
            .voice_bridge(&lookup("running", None))
            .await
            .unwrap()
            .is_some());
        let down = BbbApis::new(vec![api("http://127.0.0.1:1/bigbluebutton/api", SECRET)]);
        let e = down
            .voice_bridge(&lookup("running", None))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot connect"), "{e}");
    }

    /// The secret from `secret_file` is the one the checksum is made with: a config loaded from
    /// TOML reaches the (stand-in) API and finds the meeting.
    #[tokio::test]
    async fn a_secret_from_a_file_opens_the_api() {
        let url = fake_api().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bbb1.secret");
        std::fs::write(&file, format!("{SECRET}\n")).unwrap();
        let text = format!(
            "[[servers]]\nname = \"bbb1\"\nsip = \"sip:127.0.0.1\"\n\
             [[bbb_api]]\nurl = \"{url}\"\nsecret_file = \"{}\"\nserver = \"bbb1\"\nchecksum = \"sha1\"\n",
            file.display()
        );
        let config = crate::config::Config::from_toml(&text, "t.toml").unwrap();
        let apis = BbbApis::new(config.bbb_api);
        let found = apis.voice_bridge(&lookup("running", None)).await.unwrap();
        assert_eq!(
            found.map(|f| f.conference),
            Some(ConferenceId("66052".into()))
        );
    }
}
