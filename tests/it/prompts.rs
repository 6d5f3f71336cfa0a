//! The prompt script works on this machine and writes what dialin can play.

use std::process::Command;

#[test]
fn make_prompts_writes_every_prompt_in_telephone_format() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dialplan/make-prompts"
        ))
        .arg(out.path())
        .status()
        .expect("run make-prompts (needs bash)");
    assert!(
        status.success(),
        "make-prompts failed: it needs espeak-ng and sox (apt-get install espeak-ng sox)"
    );
    for lang in ["en", "de"] {
        for name in [
            "welcome",
            "invalid-pin",
            "goodbye",
            "connecting",
            "unavailable",
            "not-started",
            "hold",
            "connection-lost",
        ] {
            let path = out.path().join(lang).join(format!("{name}.wav"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            let samples = dialin::media::wav::parse_wav(&bytes)
                .unwrap_or_else(|e| panic!("{path:?} is not playable: {e}"));
            assert!(samples.len() > 8000, "{path:?}: under a second of speech");
        }
    }
}
