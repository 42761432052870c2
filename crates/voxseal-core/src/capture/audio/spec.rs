//! Source specifications as users write them: `mic`, `mic:<name>`, `file:<path.wav>`,
//! `synthetic:speech|noise|tone[:hz]`. Shared by the CLI (`--source`) and the desktop app
//! (`VOXSEAL_SOURCE`, for demos on machines without a microphone).

use std::path::PathBuf;

use super::{
    AudioSource, CpalSource, DeviceSelector, SourceError, SourceFactory, SyntheticKind,
    SyntheticSource, WavFileSource,
};

/// Parses a source specification into a factory the recorder thread calls. Files are validated
/// now, so a bad path is reported before recording starts. `realtime` paces files and synthetic
/// sources like a microphone; `synthetic_rate` is the synthetic source's rate.
pub fn parse_source(
    spec: &str,
    realtime: bool,
    synthetic_rate: u32,
) -> Result<SourceFactory, SourceError> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    Ok(match kind {
        "mic" => {
            let sel = if arg.is_empty() {
                DeviceSelector::Default
            } else {
                DeviceSelector::Named(arg.to_owned())
            };
            Box::new(move || Ok(Box::new(CpalSource::open(&sel)?) as Box<dyn AudioSource>))
        }
        "file" => {
            if arg.is_empty() {
                return Err(SourceError::Invalid(
                    "file: needs a path, e.g. file:take.wav".into(),
                ));
            }
            let path = PathBuf::from(arg);
            WavFileSource::open(&path)?;
            Box::new(move || {
                Ok(Box::new(WavFileSource::open(&path)?.realtime(realtime))
                    as Box<dyn AudioSource>)
            })
        }
        "synthetic" => {
            let k = SyntheticKind::parse(if arg.is_empty() { "speech" } else { arg })?;
            Box::new(move || {
                Ok(
                    Box::new(SyntheticSource::new(k, synthetic_rate, None).realtime(realtime))
                        as Box<dyn AudioSource>,
                )
            })
        }
        _ => {
            return Err(SourceError::Invalid(format!(
                "unknown source {}: use mic, mic:<device name>, file:<path.wav> or synthetic:speech|noise|tone[:hz]",
                crate::project::ids::shown(spec)
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_or_explains() {
        assert!(parse_source("synthetic", false, 16_000).is_ok());
        assert!(parse_source("synthetic:tone:440", false, 16_000).is_ok());
        assert!(
            parse_source("mic:Some Device", false, 16_000).is_ok(),
            "devices open later, on the recorder thread"
        );
        let e = parse_source("tape", false, 16_000)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown source"), "{e}");
        let e = parse_source("file:/does/not/exist.wav", false, 16_000)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot read WAV file"), "{e}");
        assert!(parse_source("file:", false, 16_000).is_err());
    }
}
