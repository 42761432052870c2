//! Level metering: peak and RMS in dBFS over short blocks, for the live meter (~25 Hz).

/// The floor reported for silence, in dBFS.
pub const SILENCE_DBFS: f32 = -120.0;
/// A sample at or beyond this magnitude counts as clipped.
pub const CLIP_THRESHOLD: f32 = 0.999;

/// One meter reading.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Level {
    /// Highest |sample| in the block, dBFS.
    pub peak_dbfs: f32,
    /// Root mean square of the block, dBFS.
    pub rms_dbfs: f32,
    /// True when any sample in the block was at full scale.
    pub clipped: bool,
    /// Seconds recorded so far.
    pub elapsed_s: f32,
}

/// Converts an amplitude (0..1) to dBFS, floored at [`SILENCE_DBFS`].
pub fn amplitude_to_dbfs(a: f32) -> f32 {
    if a <= 1e-6 {
        SILENCE_DBFS
    } else {
        (20.0 * a.log10()).max(SILENCE_DBFS)
    }
}

/// Accumulates samples and emits a [`Level`] every `block` samples.
#[derive(Debug, Clone)]
pub struct LevelMeter {
    block: usize,
    n: usize,
    sum_sq: f64,
    peak: f32,
    clipped: bool,
    total: u64,
    rate: u32,
}

impl LevelMeter {
    /// A meter for `rate` Hz that reports `per_second` times a second.
    pub fn new(rate: u32, per_second: u32) -> Self {
        let block = (rate / per_second.max(1)).max(1) as usize;
        Self {
            block,
            n: 0,
            sum_sq: 0.0,
            peak: 0.0,
            clipped: false,
            total: 0,
            rate,
        }
    }

    /// Feeds samples; calls `emit` for every completed block.
    pub fn push(&mut self, samples: &[f32], mut emit: impl FnMut(Level)) {
        for &s in samples {
            let a = s.abs();
            self.peak = self.peak.max(a);
            self.clipped |= a >= CLIP_THRESHOLD;
            self.sum_sq += (s as f64) * (s as f64);
            self.n += 1;
            self.total += 1;
            if self.n == self.block {
                emit(self.take());
            }
        }
    }

    fn take(&mut self) -> Level {
        let rms = (self.sum_sq / self.n.max(1) as f64).sqrt() as f32;
        let level = Level {
            peak_dbfs: amplitude_to_dbfs(self.peak),
            rms_dbfs: amplitude_to_dbfs(rms),
            clipped: self.clipped,
            elapsed_s: self.total as f32 / self.rate as f32,
        };
        self.n = 0;
        self.sum_sq = 0.0;
        self.peak = 0.0;
        self.clipped = false;
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_reads_0_and_minus_3_dbfs() {
        let rate = 48_000;
        let s: Vec<f32> = (0..rate)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 1000.0 / rate as f32).sin())
            .collect();
        let mut m = LevelMeter::new(rate, 25);
        let mut levels = Vec::new();
        m.push(&s, |l| levels.push(l));
        assert_eq!(levels.len(), 25);
        let l = levels[10];
        assert!(l.peak_dbfs.abs() < 0.01, "{l:?}");
        assert!((l.rms_dbfs + 3.01).abs() < 0.05, "{l:?}");
        assert!(l.clipped);
        assert!((levels[24].elapsed_s - 1.0).abs() < 1e-6);
    }

    #[test]
    fn silence_is_floored() {
        let mut m = LevelMeter::new(16_000, 25);
        let mut got = None;
        m.push(&[0.0; 640], |l| got = Some(l));
        let l = got.unwrap();
        assert_eq!(l.peak_dbfs, SILENCE_DBFS);
        assert!(!l.clipped);
    }
}
