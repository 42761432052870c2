//! Deterministic synthetic signals for demos and tests: a tone, white noise, and a speech-like
//! signal (a glottal pulse train with a gliding pitch through vowel formants, in syllables and
//! pauses, with a quiet noise floor) that exercises level meters, quality checks and features the
//! way a voice does.

use std::f32::consts::PI;

use super::{AudioSource, Chunk, Pacer, SourceError, SourceInfo};

/// Which signal to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyntheticKind {
    /// A sine at `freq` Hz, peak amplitude `amp`.
    Tone {
        /// Frequency in Hz.
        freq: f32,
        /// Peak amplitude (0..1).
        amp: f32,
    },
    /// White noise with RMS amplitude `amp`.
    Noise {
        /// RMS amplitude (0..1).
        amp: f32,
    },
    /// A speech-like signal peaking near -6 dBFS over a -60 dBFS noise floor.
    Speech,
}

impl SyntheticKind {
    /// Parses `speech`, `noise`, `tone` or `tone:<hz>`.
    pub fn parse(spec: &str) -> Result<Self, SourceError> {
        match spec.split_once(':') {
            None if spec == "speech" => Ok(Self::Speech),
            None if spec == "noise" => Ok(Self::Noise { amp: 0.05 }),
            None if spec == "tone" => Ok(Self::Tone {
                freq: 440.0,
                amp: 0.5,
            }),
            Some(("tone", hz)) => match hz.parse::<f32>() {
                Ok(f) if f > 0.0 && f < 20_000.0 => Ok(Self::Tone { freq: f, amp: 0.5 }),
                _ => Err(SourceError::Invalid(format!(
                    "tone frequency {} is not a number between 0 and 20000 Hz",
                    crate::project::ids::shown(hz)
                ))),
            },
            _ => Err(SourceError::Invalid(format!(
                "unknown synthetic signal {}: use speech, noise, tone or tone:<hz>",
                crate::project::ids::shown(spec)
            ))),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Tone { freq, .. } => format!("tone:{freq}"),
            Self::Noise { .. } => "noise".into(),
            Self::Speech => "speech".into(),
        }
    }
}

/// A small deterministic PRNG (xorshift64*), so synthetic audio is identical on every run.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// A two-pole resonator (one formant).
#[derive(Debug, Clone, Default)]
struct Resonator {
    a1: f32,
    a2: f32,
    gain: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn tune(&mut self, freq: f32, bandwidth: f32, rate: f32) {
        let r = (-PI * bandwidth / rate).exp();
        self.a1 = 2.0 * r * (2.0 * PI * freq / rate).cos();
        self.a2 = -r * r;
        self.gain = 1.0 - r;
    }
    fn step(&mut self, x: f32) -> f32 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

const VOWELS: [(f32, f32, f32); 5] = [
    (730.0, 1090.0, 2440.0),
    (270.0, 2290.0, 3010.0),
    (530.0, 1840.0, 2480.0),
    (570.0, 840.0, 2410.0),
    (440.0, 1020.0, 2240.0),
];

/// Generates a [`SyntheticKind`] signal at a chosen rate, forever or for a fixed length.
#[derive(Debug)]
pub struct SyntheticSource {
    kind: SyntheticKind,
    rate: u32,
    n: u64,
    limit: Option<u64>,
    rng: Rng,
    phase: f32,
    formants: [Resonator; 3],
    pacer: Pacer,
}

impl SyntheticSource {
    /// A generator of `kind` at `rate` Hz; `seconds` limits its length (None: endless).
    pub fn new(kind: SyntheticKind, rate: u32, seconds: Option<f64>) -> Self {
        Self {
            kind,
            rate,
            n: 0,
            limit: seconds.map(|s| (s * rate as f64).round() as u64),
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            phase: 0.0,
            formants: Default::default(),
            pacer: Pacer::new(rate, false),
        }
    }

    /// Deliver samples no faster than real time (as a microphone would).
    pub fn realtime(mut self, yes: bool) -> Self {
        self.pacer = Pacer::new(self.rate, yes);
        self
    }

    /// Generates `len` samples into a vector (tests, demos).
    pub fn generate(kind: SyntheticKind, rate: u32, len: usize) -> Vec<f32> {
        let mut s = Self::new(kind, rate, None);
        (0..len).map(|_| s.next_sample()).collect()
    }

    fn next_sample(&mut self) -> f32 {
        let rate = self.rate as f32;
        let t = self.n as f32 / rate;
        self.n += 1;
        match self.kind {
            SyntheticKind::Tone { freq, amp } => {
                self.phase = (self.phase + freq / rate).fract();
                amp * (2.0 * PI * self.phase).sin()
            }
            SyntheticKind::Noise { amp } => amp * 3f32.sqrt() * self.rng.next_f32(),
            SyntheticKind::Speech => self.speech_sample(t, rate),
        }
    }

    /// 0.5 s silence, then a 3.5 s "sentence" of 10 syllables, repeated.
    fn speech_sample(&mut self, t: f32, rate: f32) -> f32 {
        let floor = 0.001 * self.rng.next_f32(); // about -63 dBFS RMS
        let period = 4.0;
        let tp = t % period;
        if tp < 0.5 {
            return floor;
        }
        let u = tp - 0.5;
        let syl_len = 0.3;
        let k = (u / syl_len) as usize;
        let within = u - k as f32 * syl_len;
        let voiced = 0.24;
        if k >= 10 || within > voiced {
            return floor;
        }
        let sentence = (t / period) as usize;
        let (f1, f2, f3) = VOWELS[(k + sentence) % VOWELS.len()];
        if within < 1.0 / rate {
            for (r, f) in self.formants.iter_mut().zip([f1, f2, f3]) {
                r.tune(f, 80.0 + f * 0.05, rate);
            }
        }
        // Pitch glides within the sentence like an intonation contour.
        let f0 = 170.0 - 60.0 * (u / 3.0) + 15.0 * (2.0 * PI * 4.0 * u).sin();
        self.phase += f0 / rate;
        let pulse = if self.phase >= 1.0 {
            self.phase -= 1.0;
            1.0
        } else {
            0.0
        };
        let excitation = pulse + 0.02 * self.rng.next_f32();
        let v = self.formants[0].step(excitation) * 1.0
            + self.formants[1].step(excitation) * 0.6
            + self.formants[2].step(excitation) * 0.3;
        let env = (PI * within / voiced).sin().powf(0.6);
        4.0 * v * env + floor
    }
}

impl AudioSource for SyntheticSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "synthetic".into(),
            name: self.kind.name(),
            sample_rate: self.rate,
            channels: 1,
            format: "f32".into(),
        }
    }

    fn read(&mut self, buf: &mut [f32]) -> Result<Chunk, SourceError> {
        let mut want = buf.len();
        if let Some(limit) = self.limit {
            want = want.min(limit.saturating_sub(self.n) as usize);
            if want == 0 {
                return Ok(Chunk::End);
            }
        }
        want = self.pacer.allowance(want);
        if want == 0 {
            return Ok(Chunk::Pending);
        }
        for s in &mut buf[..want] {
            *s = self.next_sample();
        }
        self.pacer.delivered(want);
        Ok(Chunk::Samples(want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::audio::levels::amplitude_to_dbfs;

    #[test]
    fn speech_has_pauses_and_loud_syllables() {
        let rate = 16_000;
        let s = SyntheticSource::generate(SyntheticKind::Speech, rate, 4 * rate as usize);
        let peak = s.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(
            (-12.0..-1.0).contains(&amplitude_to_dbfs(peak)),
            "peak {}",
            amplitude_to_dbfs(peak)
        );
        let lead = &s[..(0.4 * rate as f32) as usize];
        let lead_peak = lead.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(amplitude_to_dbfs(lead_peak) < -55.0);
        assert_eq!(
            s,
            SyntheticSource::generate(SyntheticKind::Speech, rate, 4 * rate as usize),
            "deterministic"
        );
    }

    #[test]
    fn limited_source_ends() {
        let mut src = SyntheticSource::new(
            SyntheticKind::Tone {
                freq: 1000.0,
                amp: 0.5,
            },
            8000,
            Some(0.5),
        );
        let mut buf = [0f32; 1000];
        let mut total = 0;
        loop {
            match src.read(&mut buf).unwrap() {
                Chunk::Samples(n) => total += n,
                Chunk::End => break,
                Chunk::Pending => unreachable!(),
            }
        }
        assert_eq!(total, 4000);
    }

    #[test]
    fn parses_specs() {
        assert_eq!(
            SyntheticKind::parse("speech").unwrap(),
            SyntheticKind::Speech
        );
        assert!(
            matches!(SyntheticKind::parse("tone:1000").unwrap(), SyntheticKind::Tone { freq, .. } if freq == 1000.0)
        );
        assert!(SyntheticKind::parse("tone:abc").is_err());
        assert!(SyntheticKind::parse("song").is_err());
    }
}
