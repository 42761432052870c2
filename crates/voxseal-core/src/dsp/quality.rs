//! Per-take quality checks, computed in one streaming pass with constant memory.
//!
//! The [`QualityAnalyzer`] sees every sample once (live, on the recorder thread, or from a file):
//! peak, RMS, clipped samples, and the RMS of short frames (20 ms). Frame levels go into a
//! histogram (0.25 dB bins) that also remembers, per bin, the first and last frame that fell in
//! it; so the noise floor (10th percentile), the speech level (95th percentile), the speech
//! threshold between them and the first and last speech frames all come out at the end without
//! keeping the frames. [`QualityAnalyzer::finish`] then judges each measure against
//! [`QualityThresholds`] with a human reason.

use serde::{Deserialize, Serialize};

use crate::capture::audio::levels::{CLIP_THRESHOLD, SILENCE_DBFS, amplitude_to_dbfs};

const FRAME_MS: u32 = 20;
const BIN_DB: f32 = 0.25;
const BINS: usize = (-SILENCE_DBFS / BIN_DB) as usize + 1;

/// Thresholds for the quality verdicts (from the project config; defaults suit read speech).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityThresholds {
    /// Shorter takes fail, seconds.
    pub min_duration_s: f64,
    /// Longer takes get a warning, seconds.
    pub max_duration_s: f64,
    /// Clipped-sample ratio above which a take gets a warning.
    pub clip_warn_ratio: f64,
    /// Clipped-sample ratio above which a take fails.
    pub clip_fail_ratio: f64,
    /// Speech quieter than this (dBFS) gets a warning.
    pub speech_warn_below_dbfs: f64,
    /// Speech quieter than this (dBFS) fails.
    pub speech_fail_below_dbfs: f64,
    /// Speech louder than this (dBFS) gets a warning.
    pub speech_warn_above_dbfs: f64,
    /// SNR below this (dB) gets a warning.
    pub snr_warn_below_db: f64,
    /// SNR below this (dB) fails.
    pub snr_fail_below_db: f64,
    /// A background louder than this (dBFS) gets a warning.
    pub noise_warn_above_dbfs: f64,
    /// Leading or trailing silence longer than this (seconds) gets a warning.
    pub silence_warn_above_s: f64,
    /// Less detected speech than this (seconds) fails.
    pub min_speech_s: f64,
    /// Margin kept around detected speech when trimming, milliseconds.
    pub trim_margin_ms: u32,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        Self {
            min_duration_s: 0.5,
            max_duration_s: 30.0,
            clip_warn_ratio: 0.0001,
            clip_fail_ratio: 0.01,
            speech_warn_below_dbfs: -35.0,
            speech_fail_below_dbfs: -50.0,
            speech_warn_above_dbfs: -3.0,
            snr_warn_below_db: 25.0,
            snr_fail_below_db: 12.0,
            noise_warn_above_dbfs: -45.0,
            silence_warn_above_s: 2.0,
            min_speech_s: 0.25,
            trim_margin_ms: 200,
        }
    }
}

impl QualityThresholds {
    /// Checks the thresholds are consistent; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let ordered = [
            (self.min_duration_s > 0.0, "min_duration_s must be positive"),
            (
                self.max_duration_s > self.min_duration_s,
                "max_duration_s must exceed min_duration_s",
            ),
            (
                (0.0..=1.0).contains(&self.clip_warn_ratio)
                    && self.clip_warn_ratio <= self.clip_fail_ratio,
                "clip ratios must be within 0..1 with clip_warn_ratio <= clip_fail_ratio",
            ),
            (
                self.speech_fail_below_dbfs <= self.speech_warn_below_dbfs
                    && self.speech_warn_below_dbfs < self.speech_warn_above_dbfs
                    && self.speech_warn_above_dbfs <= 0.0,
                "speech levels must satisfy fail_below <= warn_below < warn_above <= 0 dBFS",
            ),
            (
                self.snr_fail_below_db <= self.snr_warn_below_db,
                "snr_fail_below_db must not exceed snr_warn_below_db",
            ),
            (
                self.trim_margin_ms <= 5_000,
                "trim_margin_ms must be at most 5000",
            ),
        ];
        match ordered.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err((*why).to_owned()),
            None => Ok(()),
        }
    }
}

/// A verdict, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Good.
    Pass,
    /// Usable, but worth re-recording.
    Warn,
    /// Must be re-recorded or explicitly accepted.
    Fail,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        })
    }
}

/// One judged measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `duration`, `clipping`, `level`, `snr`, `noise`, `silence`, `speech`.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What to do about it, for the contractor.
    pub reason: String,
}

/// Everything measured about a take, and the verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Length, seconds.
    pub duration_s: f64,
    /// Highest |sample|, dBFS.
    pub peak_dbfs: f64,
    /// RMS over the whole take, dBFS.
    pub rms_dbfs: f64,
    /// Fraction of samples at full scale.
    pub clipped_ratio: f64,
    /// 10th percentile of 20 ms frame levels, dBFS.
    pub noise_floor_dbfs: f64,
    /// 95th percentile of 20 ms frame levels, dBFS.
    pub speech_dbfs: f64,
    /// `speech_dbfs - noise_floor_dbfs`, dB.
    pub snr_db: f64,
    /// Detected speech `[start, end)` in seconds, if any.
    pub speech_s: Option<(f64, f64)>,
    /// Silence before the speech, seconds.
    pub leading_silence_s: f64,
    /// Silence after the speech, seconds.
    pub trailing_silence_s: f64,
    /// Samples to keep when trimming: speech plus the margin, `[start, end)`.
    pub trim: (u64, u64),
    /// The judged checks.
    pub checks: Vec<Check>,
    /// The worst verdict.
    pub overall: Verdict,
}

/// Streaming accumulator for [`QualityReport`]; memory does not grow with the take.
#[derive(Debug, Clone)]
pub struct QualityAnalyzer {
    rate: u32,
    frame_len: usize,
    n: u64,
    peak: f32,
    sum_sq: f64,
    clipped: u64,
    frame_sum_sq: f64,
    frame_fill: usize,
    frames: u64,
    hist: Vec<u64>,
    first: Vec<u64>,
    last: Vec<u64>,
}

impl QualityAnalyzer {
    /// An analyzer for audio at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            frame_len: (rate * FRAME_MS / 1000).max(1) as usize,
            n: 0,
            peak: 0.0,
            sum_sq: 0.0,
            clipped: 0,
            frame_sum_sq: 0.0,
            frame_fill: 0,
            frames: 0,
            hist: vec![0; BINS],
            first: vec![u64::MAX; BINS],
            last: vec![0; BINS],
        }
    }

    /// Feeds samples.
    pub fn push(&mut self, samples: &[f32]) {
        for &s in samples {
            let a = s.abs();
            self.peak = self.peak.max(a);
            self.clipped += (a >= CLIP_THRESHOLD) as u64;
            let sq = (s as f64) * (s as f64);
            self.sum_sq += sq;
            self.frame_sum_sq += sq;
            self.frame_fill += 1;
            if self.frame_fill == self.frame_len {
                self.close_frame();
            }
        }
        self.n += samples.len() as u64;
    }

    fn close_frame(&mut self) {
        let rms = (self.frame_sum_sq / self.frame_fill as f64).sqrt() as f32;
        let bin = Self::bin(amplitude_to_dbfs(rms));
        self.hist[bin] += 1;
        self.first[bin] = self.first[bin].min(self.frames);
        self.last[bin] = self.last[bin].max(self.frames);
        self.frames += 1;
        self.frame_sum_sq = 0.0;
        self.frame_fill = 0;
    }

    fn bin(db: f32) -> usize {
        (((db - SILENCE_DBFS) / BIN_DB) as usize).min(BINS - 1)
    }

    fn bin_db(bin: usize) -> f64 {
        SILENCE_DBFS as f64 + bin as f64 * BIN_DB as f64
    }

    fn percentile(&self, p: f64) -> f64 {
        let target = ((self.frames as f64) * p).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (b, &c) in self.hist.iter().enumerate() {
            acc += c;
            if acc >= target {
                return Self::bin_db(b);
            }
        }
        SILENCE_DBFS as f64
    }

    /// Samples seen so far.
    pub fn samples(&self) -> u64 {
        self.n
    }

    /// Measures and judges the take.
    pub fn finish(mut self, t: &QualityThresholds) -> QualityReport {
        // A trailing partial frame longer than half a frame still counts.
        if self.frame_fill * 2 >= self.frame_len {
            self.close_frame();
        }
        let rate = self.rate as f64;
        let duration_s = self.n as f64 / rate;
        let rms = (self.sum_sq / self.n.max(1) as f64).sqrt() as f32;
        let clipped_ratio = self.clipped as f64 / self.n.max(1) as f64;
        let noise = self.percentile(0.10);
        let speech_level = self.percentile(0.95);
        let span = self.speech_span(noise, speech_level, t.trim_margin_ms);
        let m = Measures {
            duration_s,
            clipped_ratio,
            noise,
            speech_level,
            snr: speech_level - noise,
            span,
        };
        let checks = judge(&m, t);
        let overall = (checks.iter().map(|c| c.verdict))
            .max()
            .unwrap_or(Verdict::Pass);
        QualityReport {
            duration_s,
            peak_dbfs: amplitude_to_dbfs(self.peak) as f64,
            rms_dbfs: amplitude_to_dbfs(rms) as f64,
            clipped_ratio,
            noise_floor_dbfs: noise,
            speech_dbfs: speech_level,
            snr_db: m.snr,
            speech_s: m.span.speech_s,
            leading_silence_s: m.span.leading,
            trailing_silence_s: m.span.trailing,
            trim: m.span.trim,
            checks,
            overall,
        }
    }

    /// The first and last speech frames (end exclusive): frames at least 6 dB above the floor,
    /// 30% of the way to the speech level, and within 30 dB of it, so digital silence elsewhere
    /// in the take does not turn a quiet room into "speech".
    fn speech_frames(&self, noise: f64, speech_level: f64) -> Option<(u64, u64)> {
        let snr = speech_level - noise;
        if self.frames == 0 || snr < 6.0 {
            return None;
        }
        let threshold = (noise + (0.3 * snr).max(6.0)).max(speech_level - 30.0);
        let from = Self::bin(threshold as f32);
        let first = self.first[from..].iter().copied().min()?;
        let last = (self.last[from..].iter().zip(&self.hist[from..]))
            .filter(|(_, c)| **c > 0)
            .map(|(l, _)| *l)
            .max()?;
        (first != u64::MAX).then_some((first, last + 1))
    }

    /// Where speech is in the take, the silence around it, and what to keep when trimming
    /// (`margin_ms` around the speech).
    fn speech_span(&self, noise: f64, speech_level: f64, margin_ms: u32) -> SpeechSpan {
        let rate = self.rate as f64;
        let margin = (margin_ms as u64 * self.rate as u64) / 1000;
        match self.speech_frames(noise, speech_level) {
            Some((f, l)) => {
                let start = f * self.frame_len as u64;
                let end = (l * self.frame_len as u64).min(self.n);
                SpeechSpan {
                    speech_s: Some((start as f64 / rate, end as f64 / rate)),
                    leading: start as f64 / rate,
                    trailing: (self.n - end) as f64 / rate,
                    trim: (start.saturating_sub(margin), (end + margin).min(self.n)),
                }
            }
            None => SpeechSpan {
                speech_s: None,
                leading: 0.0,
                trailing: 0.0,
                trim: (0, self.n),
            },
        }
    }
}

/// Where speech is in a take.
struct SpeechSpan {
    speech_s: Option<(f64, f64)>,
    leading: f64,
    trailing: f64,
    trim: (u64, u64),
}

/// What the checks judge.
struct Measures {
    duration_s: f64,
    clipped_ratio: f64,
    noise: f64,
    speech_level: f64,
    snr: f64,
    span: SpeechSpan,
}

fn check(name: &str, verdict: Verdict, reason: String) -> Check {
    Check {
        name: name.into(),
        verdict,
        reason,
    }
}

/// The checks of a take, in the order the report lists them; the level, SNR and silence checks
/// only when speech was found.
fn judge(m: &Measures, t: &QualityThresholds) -> Vec<Check> {
    let speech_len = m.span.speech_s.map(|(a, b)| b - a).unwrap_or(0.0);
    let has_speech = m.span.speech_s.is_some() && speech_len >= t.min_speech_s;
    let mut checks = vec![
        duration_check(m.duration_s, t),
        clipping_check(m.clipped_ratio, t),
        if has_speech {
            check(
                "speech",
                Verdict::Pass,
                format!("{speech_len:.1} s of speech detected"),
            )
        } else {
            let why =
                "no speech detected: check that the right microphone is selected and not muted";
            check("speech", Verdict::Fail, why.into())
        },
    ];
    if has_speech {
        checks.push(level_check(m.speech_level, t));
        checks.push(snr_check(m.snr, t));
        checks.push(silence_check(m.span.leading, m.span.trailing, t));
    }
    checks.push(noise_check(m.noise, t));
    checks
}

fn duration_check(duration_s: f64, t: &QualityThresholds) -> Check {
    if duration_s < t.min_duration_s {
        let why = format!("too short ({duration_s:.1} s): record the whole prompt");
        check("duration", Verdict::Fail, why)
    } else if duration_s > t.max_duration_s {
        let why = format!("long take ({duration_s:.1} s): check it holds only this prompt");
        check("duration", Verdict::Warn, why)
    } else {
        check("duration", Verdict::Pass, format!("{duration_s:.1} s"))
    }
}

fn clipping_check(ratio: f64, t: &QualityThresholds) -> Check {
    let pct = ratio * 100.0;
    let why = || {
        format!("clipping in {pct:.1}% of samples: move back from the mic or lower the input gain")
    };
    if ratio > t.clip_fail_ratio {
        check("clipping", Verdict::Fail, why())
    } else if ratio > t.clip_warn_ratio {
        check("clipping", Verdict::Warn, why())
    } else {
        check("clipping", Verdict::Pass, "no clipping".into())
    }
}

fn level_check(level: f64, t: &QualityThresholds) -> Check {
    let quiet = || format!("too quiet ({level:.0} dBFS): move closer or raise the input gain");
    if level < t.speech_fail_below_dbfs {
        check("level", Verdict::Fail, quiet())
    } else if level < t.speech_warn_below_dbfs {
        check("level", Verdict::Warn, quiet())
    } else if level > t.speech_warn_above_dbfs {
        let why =
            format!("very loud ({level:.0} dBFS): move back a little or lower the input gain");
        check("level", Verdict::Warn, why)
    } else {
        check("level", Verdict::Pass, format!("speech at {level:.0} dBFS"))
    }
}

fn snr_check(snr: f64, t: &QualityThresholds) -> Check {
    let close = || {
        format!("background noise is close to your voice (SNR {snr:.0} dB): find a quieter place")
    };
    if snr < t.snr_fail_below_db {
        check("snr", Verdict::Fail, close())
    } else if snr < t.snr_warn_below_db {
        check("snr", Verdict::Warn, close())
    } else {
        check("snr", Verdict::Pass, format!("SNR {snr:.0} dB"))
    }
}

fn silence_check(leading: f64, trailing: f64, t: &QualityThresholds) -> Check {
    let verdict = if leading.max(trailing) > t.silence_warn_above_s {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let why = if leading > t.silence_warn_above_s {
        format!("{leading:.1} s of silence before you speak: start soon after pressing record")
    } else if trailing > t.silence_warn_above_s {
        format!("{trailing:.1} s of silence after you speak: stop soon after the last word")
    } else {
        format!("{leading:.1} s before, {trailing:.1} s after the speech")
    };
    check("silence", verdict, why)
}

fn noise_check(noise: f64, t: &QualityThresholds) -> Check {
    if noise > t.noise_warn_above_dbfs {
        let why = format!("the room is noisy ({noise:.0} dBFS background): find a quieter place");
        check("noise", Verdict::Warn, why)
    } else {
        check(
            "noise",
            Verdict::Pass,
            format!("background at {noise:.0} dBFS"),
        )
    }
}

/// The mic check's verdict on a short recording of the contractor saying a few words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicCheck {
    /// Background level, dBFS.
    pub noise_floor_dbfs: f64,
    /// Loudest sample, dBFS.
    pub peak_dbfs: f64,
    /// `good`, `too_noisy` or `too_quiet`.
    pub verdict: String,
    /// What to do, for the contractor.
    pub message: String,
}

/// Judges a mic-check recording: is the room quiet enough and the voice loud enough?
pub fn mic_check(r: &QualityReport, t: &QualityThresholds) -> MicCheck {
    let (verdict, message) = if r.noise_floor_dbfs > t.noise_warn_above_dbfs
        || (r.speech_s.is_some() && r.snr_db < t.snr_fail_below_db)
    {
        (
            "too_noisy",
            format!(
                "too noisy: the background is at {:.0} dBFS; find a quieter place or switch off fans",
                r.noise_floor_dbfs
            ),
        )
    } else if r.speech_s.is_none() || r.speech_dbfs < t.speech_warn_below_dbfs {
        (
            "too_quiet",
            "too quiet: move closer or raise the input gain".to_owned(),
        )
    } else if r.clipped_ratio > t.clip_warn_ratio {
        (
            "too_loud",
            "too loud: the signal clips; move back a little or lower the input gain".to_owned(),
        )
    } else {
        (
            "good",
            format!(
                "good: your voice at {:.0} dBFS over a {:.0} dBFS background",
                r.speech_dbfs, r.noise_floor_dbfs
            ),
        )
    };
    MicCheck {
        noise_floor_dbfs: r.noise_floor_dbfs,
        peak_dbfs: r.peak_dbfs,
        verdict: verdict.into(),
        message,
    }
}

/// Analyzes in-memory samples (tests, short clips).
pub fn analyze(samples: &[f32], rate: u32, t: &QualityThresholds) -> QualityReport {
    let mut a = QualityAnalyzer::new(rate);
    a.push(samples);
    a.finish(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::audio::synthetic::{SyntheticKind, SyntheticSource};

    fn verdict(r: &QualityReport, name: &str) -> Verdict {
        r.checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {r:?}"))
            .verdict
    }

    fn speech(rate: u32, seconds: f32) -> Vec<f32> {
        SyntheticSource::generate(
            SyntheticKind::Speech,
            rate,
            (seconds * rate as f32) as usize,
        )
    }

    #[test]
    fn clean_speech_passes_and_is_found() {
        let rate = 16_000;
        let s = speech(rate, 4.0);
        let r = analyze(&s, rate, &QualityThresholds::default());
        assert_eq!(r.overall, Verdict::Pass, "{r:#?}");
        let (a, b) = r.speech_s.unwrap();
        // The synthetic sentence starts at 0.5 s and its last syllable ends at 0.5 + 9*0.3 + 0.24.
        assert!((a - 0.5).abs() < 0.05, "{a}");
        assert!((b - 3.44).abs() < 0.08, "{b}");
        assert!(r.snr_db > 40.0, "{}", r.snr_db);
        assert!(r.noise_floor_dbfs < -55.0);
    }

    #[test]
    fn trimming_keeps_the_margin_and_never_cuts_speech() {
        let rate = 16_000;
        let mut s = vec![0.0; 3 * rate as usize];
        s.extend(speech(rate, 4.0));
        s.extend(vec![0.0; 3 * rate as usize]);
        let r = analyze(&s, rate, &QualityThresholds::default());
        let (a, b) = r.speech_s.unwrap();
        let (ts, te) = r.trim;
        assert!((ts as f64) <= a * rate as f64 - 0.2 * rate as f64 + 1.0);
        assert!((te as f64) >= b * rate as f64 + 0.2 * rate as f64 - 1.0);
        // Every sample louder than -40 dBFS is inside the trim window.
        let loud = |x: &f32| x.abs() > 0.01;
        let first_loud = s.iter().position(loud).unwrap() as u64;
        let last_loud = s.iter().rposition(loud).unwrap() as u64;
        assert!(
            ts <= first_loud && te > last_loud,
            "trim {ts}..{te}, loud {first_loud}..{last_loud}"
        );
        assert_eq!(verdict(&r, "silence"), Verdict::Warn);
        assert!(r.leading_silence_s > 3.4, "{r:#?}");
    }

    #[test]
    fn clipping_fails_with_a_human_reason() {
        let rate = 16_000;
        let s: Vec<f32> = speech(rate, 3.0)
            .iter()
            .map(|x| (x * 8.0).clamp(-1.0, 1.0))
            .collect();
        let r = analyze(&s, rate, &QualityThresholds::default());
        assert_eq!(verdict(&r, "clipping"), Verdict::Fail);
        let c = r.checks.iter().find(|c| c.name == "clipping").unwrap();
        assert!(
            c.reason.starts_with("clipping in ") && c.reason.contains("% of samples: move back"),
            "{}",
            c.reason
        );
        assert_eq!(r.overall, Verdict::Fail);
    }

    #[test]
    fn quiet_noisy_silent_and_short_takes() {
        let rate = 16_000;
        let t = QualityThresholds::default();
        let quiet: Vec<f32> = speech(rate, 3.0).iter().map(|x| x * 0.05).collect();
        let r = analyze(&quiet, rate, &t);
        assert_eq!(verdict(&r, "level"), Verdict::Warn, "{r:#?}");
        assert!(r.checks.iter().any(|c| c.reason.contains("too quiet")));
        let whisper: Vec<f32> = speech(rate, 3.0).iter().map(|x| x * 0.005).collect();
        assert_eq!(
            verdict(&analyze(&whisper, rate, &t), "level"),
            Verdict::Fail
        );

        let noise =
            SyntheticSource::generate(SyntheticKind::Noise { amp: 0.05 }, rate, 3 * rate as usize);
        let noisy: Vec<f32> = speech(rate, 3.0)
            .iter()
            .zip(&noise)
            .map(|(a, b)| a + b)
            .collect();
        let r = analyze(&noisy, rate, &t);
        assert_eq!(verdict(&r, "noise"), Verdict::Warn, "{r:#?}");
        assert!(verdict(&r, "snr") >= Verdict::Warn, "{r:#?}");

        let r = analyze(&vec![0.0; 3 * rate as usize], rate, &t);
        assert_eq!(verdict(&r, "speech"), Verdict::Fail);
        assert_eq!(r.trim, (0, 3 * rate as u64));

        let r = analyze(&speech(rate, 0.3), rate, &t);
        assert_eq!(verdict(&r, "duration"), Verdict::Fail);

        let r = analyze(&[], rate, &t);
        assert_eq!(r.overall, Verdict::Fail);
        assert_eq!(r.duration_s, 0.0);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let rate = 44_100;
        let s = speech(rate, 2.5);
        let t = QualityThresholds::default();
        let mut a = QualityAnalyzer::new(rate);
        for part in s.chunks(1234) {
            a.push(part);
        }
        assert_eq!(a.finish(&t), analyze(&s, rate, &t));
    }

    #[test]
    fn mic_check_verdicts() {
        let rate = 16_000;
        let t = QualityThresholds::default();
        assert_eq!(
            mic_check(&analyze(&speech(rate, 3.0), rate, &t), &t).verdict,
            "good"
        );
        let quiet: Vec<f32> = speech(rate, 3.0).iter().map(|x| x * 0.02).collect();
        assert_eq!(
            mic_check(&analyze(&quiet, rate, &t), &t).verdict,
            "too_quiet"
        );
        assert_eq!(
            mic_check(&analyze(&vec![0.0; 48_000], rate, &t), &t).verdict,
            "too_quiet"
        );
        let noise = SyntheticSource::generate(SyntheticKind::Noise { amp: 0.05 }, rate, 48_000);
        let noisy: Vec<f32> = speech(rate, 3.0)
            .iter()
            .zip(&noise)
            .map(|(a, b)| a + b)
            .collect();
        let m = mic_check(&analyze(&noisy, rate, &t), &t);
        assert_eq!(m.verdict, "too_noisy", "{m:?}");
        assert!(m.message.starts_with("too noisy"));
    }

    #[test]
    fn default_thresholds_validate_and_bad_ones_do_not() {
        assert!(QualityThresholds::default().validate().is_ok());
        let bad = QualityThresholds {
            clip_warn_ratio: 0.5,
            clip_fail_ratio: 0.1,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("clip"));
    }
}
