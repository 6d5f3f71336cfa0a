//! The IVR's prompt set: the recordings built into the binary from `dialplan/sounds/`, or an
//! operator's own set from `ivr.sounds_dir`. Loaded and encoded once at start-up.

use crate::call::PromptId;
use crate::config::{IvrConfig, Language};
use crate::media::prompt::EncodedPrompt;
use crate::media::wav::{parse_wav, WavError};
use std::path::PathBuf;
use tracing::warn;

/// Why a prompt could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoundsError {
    /// The file is missing or unreadable.
    #[error("cannot read prompt {path}: {source}; ivr.sounds_dir must hold <language>/<prompt>.wav for every prompt")]
    Read {
        /// The file we tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a WAV we can play.
    #[error("prompt {name}: {source}")]
    Format {
        /// The file (or built-in name).
        name: String,
        /// What is wrong with it.
        source: WavError,
    },
}

macro_rules! builtin {
    ($lang:literal) => {
        [
            include_bytes!(concat!("../dialplan/sounds/", $lang, "/welcome.wav")).as_slice(),
            include_bytes!(concat!("../dialplan/sounds/", $lang, "/invalid-pin.wav")).as_slice(),
            include_bytes!(concat!("../dialplan/sounds/", $lang, "/goodbye.wav")).as_slice(),
            include_bytes!(concat!("../dialplan/sounds/", $lang, "/connecting.wav")).as_slice(),
            include_bytes!(concat!("../dialplan/sounds/", $lang, "/unavailable.wav")).as_slice(),
            include_bytes!(concat!("../dialplan/sounds/", $lang, "/not-started.wav")).as_slice(),
            include_bytes!(concat!("../dialplan/sounds/", $lang, "/hold.wav")).as_slice(),
            include_bytes!(concat!(
                "../dialplan/sounds/",
                $lang,
                "/connection-lost.wav"
            ))
            .as_slice(),
        ]
    };
}

/// The built-in WAV bytes of `language`, in [`PromptId::ALL`] order.
fn builtin(language: Language) -> [&'static [u8]; 8] {
    match language {
        Language::En => builtin!("en"),
        Language::De => builtin!("de"),
    }
}

/// Loads and encodes every prompt of the configured language, in [`PromptId::ALL`] order.
pub fn load_prompts(ivr: &IvrConfig) -> Result<Vec<EncodedPrompt>, SoundsError> {
    let builtin = builtin(ivr.language);
    PromptId::ALL
        .iter()
        .zip(builtin)
        .map(|(id, bytes)| {
            let file = format!("{}.wav", id.file_stem());
            let own = ivr.sounds_dir.as_ref().map(|dir| dir.join(ivr.language.code()).join(&file));
            let own = own.filter(|path| {
                let missing = id.may_be_missing() && !path.exists();
                if missing {
                    warn!(prompt = %file, "ivr.sounds_dir has no such prompt (added in a later dialin): playing the built-in one");
                }
                !missing
            });
            let (name, samples) = match own {
                Some(path) => {
                    let data = std::fs::read(&path).map_err(|source| SoundsError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    (path.display().to_string(), parse_wav(&data))
                }
                None => (
                    format!("built-in {}/{file}", ivr.language.code()),
                    parse_wav(bytes),
                ),
            };
            let samples = samples.map_err(|source| SoundsError::Format { name, source })?;
            Ok(EncodedPrompt::from_samples(&samples))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator's sound set made before `connection-lost.wav` existed still loads (the
    /// built-in prompt fills in); a set missing any other prompt is refused.
    #[test]
    fn an_older_sound_set_gets_the_built_in_connection_lost_prompt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let en = dir.path().join("en");
        std::fs::create_dir(&en).expect("folder");
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/dialplan/sounds/en");
        for id in PromptId::ALL.iter().filter(|id| !id.may_be_missing()) {
            let file = format!("{}.wav", id.file_stem());
            std::fs::copy(format!("{shipped}/{file}"), en.join(&file)).expect("copy");
        }
        let ivr = IvrConfig {
            sounds_dir: Some(dir.path().to_path_buf()),
            ..IvrConfig::default()
        };
        let prompts = load_prompts(&ivr).expect("loads without connection-lost.wav");
        assert_eq!(prompts.len(), PromptId::ALL.len());
        std::fs::remove_file(en.join("hold.wav")).expect("remove");
        match load_prompts(&ivr) {
            Err(SoundsError::Read { path, .. }) => assert!(path.ends_with("en/hold.wav")),
            other => panic!(
                "a missing hold.wav must be refused: {:?}",
                other.map(|p| p.len())
            ),
        }
    }

    #[test]
    fn builtin_prompts_are_valid_for_every_language() {
        for language in [Language::En, Language::De] {
            for (i, bytes) in builtin(language).iter().enumerate() {
                let samples = parse_wav(bytes).unwrap_or_else(|e| panic!("{language:?} {i}: {e}"));
                // At least half a second of sound: a prompt must say something.
                assert!(samples.len() > 4000, "{language:?} {i} too short");
            }
        }
    }
}
