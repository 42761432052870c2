//! WAV in and out.
//!
//! Reading goes through hound ([`WavInput`]) with validation and clear errors: any PCM integer
//! width hound reads (8/16/24/32-bit) or 32-bit float, 1-8 channels (downmixed to mono), 8 kHz to
//! 384 kHz; a data chunk that ends before its header says is reported, not silently shortened.
//!
//! Writing produces 16-bit PCM mono ([`Pcm16Writer`]) as a stream: the sealed WAV is written
//! straight into the age encryptor, which cannot seek, so the 44-byte header (whose lengths are
//! known up front) is written first instead of patched at the end as hound's writer does. Tests
//! read the result back with hound.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;

/// Lowest sample rate accepted from a WAV file, Hz.
pub const MIN_RATE: u32 = 8_000;
/// Highest sample rate accepted from a WAV file, Hz.
pub const MAX_RATE: u32 = 384_000;

/// Why a WAV file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file could not be opened or read.
    #[error("cannot read WAV file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A pipe, device, socket or directory: it cannot be validated, then read again from the
    /// start, so it is refused before it is opened (opening a FIFO blocks until a writer comes).
    #[error("cannot read WAV file {path}: it is {what}")]
    NotRegular {
        /// The file.
        path: String,
        /// What it is and what to do (`a pipe (FIFO), not a regular file; save it...`).
        what: &'static str,
    },
    /// The bytes are not a well-formed WAV file.
    #[error("{path} is not a valid WAV file: {detail}")]
    Malformed {
        /// The file.
        path: String,
        /// What hound found wrong.
        detail: String,
    },
    /// A valid WAV file in a format Voxseal does not take.
    #[error("{path}: {detail}")]
    Unsupported {
        /// The file.
        path: String,
        /// Which property is out of range, and what is accepted.
        detail: String,
    },
    /// The data chunk ends before the length the header declares.
    #[error(
        "{path} is truncated: its header promises {expected} samples but the data ends after {got}"
    )]
    Truncated {
        /// The file.
        path: String,
        /// Samples (all channels) the header declares.
        expected: u64,
        /// Samples actually present.
        got: u64,
    },
}

/// A validated WAV file being read as mono `f32`.
pub struct WavInput {
    path: String,
    reader: hound::WavReader<BufReader<File>>,
    spec: hound::WavSpec,
    read: u64,
}

impl WavInput {
    /// Opens and validates a WAV file.
    pub fn open(path: &Path) -> Result<Self, WavError> {
        let shown = path.display().to_string();
        let io = |source| WavError::Io {
            path: shown.clone(),
            source,
        };
        // `metadata` follows symlinks (/dev/stdin -> a pipe) and never blocks, unlike opening.
        let kind = std::fs::metadata(path).map_err(io)?.file_type();
        if !kind.is_file() {
            return Err(WavError::NotRegular {
                path: shown,
                what: describe_file_type(&kind),
            });
        }
        let file = File::open(path).map_err(io)?;
        let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| match e {
            // A short read (hound reports it as UnexpectedEof or, from its own helper, as Other)
            // means the header is cut short; any other error is the file's (a directory, say).
            hound::Error::IoError(ref io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::Other
                ) =>
            {
                WavError::Malformed {
                    path: shown.clone(),
                    detail: "the file ends inside its header".into(),
                }
            }
            hound::Error::IoError(source) => WavError::Io {
                path: shown.clone(),
                source,
            },
            hound::Error::Unsupported => WavError::Unsupported {
                path: shown.clone(),
                detail:
                    "this WAV encoding is not supported: use PCM (8/16/24/32-bit) or 32-bit float"
                        .into(),
            },
            other => WavError::Malformed {
                path: shown.clone(),
                detail: other.to_string(),
            },
        })?;
        let spec = reader.spec();
        let unsupported = |detail: String| WavError::Unsupported {
            path: shown.clone(),
            detail,
        };
        if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
            return Err(unsupported(format!(
                "sample rate {} Hz is outside {MIN_RATE}-{MAX_RATE} Hz",
                spec.sample_rate
            )));
        }
        if !(1..=8).contains(&spec.channels) {
            return Err(unsupported(format!(
                "{} channels; 1 to 8 are accepted",
                spec.channels
            )));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 8 | 16 | 24 | 32) | (hound::SampleFormat::Float, 32) => {}
            (f, b) => {
                return Err(unsupported(format!(
                    "{b}-bit {f:?} samples are not supported"
                )));
            }
        }
        Ok(Self {
            path: shown,
            reader,
            spec,
            read: 0,
        })
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.spec.sample_rate
    }

    /// Channels in the file (the output is mono).
    pub fn channels(&self) -> u16 {
        self.spec.channels
    }

    /// Format as text, e.g. `16-bit int`.
    pub fn format(&self) -> String {
        match self.spec.sample_format {
            hound::SampleFormat::Int => format!("{}-bit int", self.spec.bits_per_sample),
            hound::SampleFormat::Float => format!("{}-bit float", self.spec.bits_per_sample),
        }
    }

    /// Length in seconds, as the header declares it.
    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / self.sample_rate() as f64
    }

    /// Frames (samples per channel) the header declares.
    pub fn frames(&self) -> u64 {
        self.reader.duration() as u64
    }

    /// Reads up to `buf.len()` mono frames; returns 0 at the end.
    pub fn read_mono(&mut self, buf: &mut [f32]) -> Result<usize, WavError> {
        let ch = self.spec.channels as usize;
        let expected = self.reader.len() as u64;
        let path = self.path.clone();
        let read_before = self.read;
        let mut got = 0usize;
        let mut pending = 0f32;
        let mut in_frame = 0usize;
        let mut count = 0u64;
        let on_err = |e: hound::Error, count: u64| match e {
            // hound reports a short read as UnexpectedEof or, from its own helper, as Other.
            hound::Error::IoError(ref io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::Other
                ) =>
            {
                WavError::Truncated {
                    path: path.clone(),
                    expected,
                    got: read_before + count,
                }
            }
            hound::Error::IoError(source) => WavError::Io {
                path: path.clone(),
                source,
            },
            other => WavError::Malformed {
                path: path.clone(),
                detail: other.to_string(),
            },
        };
        let want = buf.len() * ch;
        match self.spec.sample_format {
            hound::SampleFormat::Float => {
                for s in self.reader.samples::<f32>().take(want) {
                    let v = s.map_err(|e| on_err(e, count))?;
                    count += 1;
                    // Scale before summing: the sum of large finite samples can overflow to
                    // infinity (found by fuzzing); each share is at most f32::MAX / ch.
                    pending += if v.is_finite() { v / ch as f32 } else { 0.0 };
                    in_frame += 1;
                    if in_frame == ch {
                        buf[got] = pending;
                        got += 1;
                        pending = 0.0;
                        in_frame = 0;
                    }
                }
            }
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (self.spec.bits_per_sample - 1)) as f32;
                for s in self.reader.samples::<i32>().take(want) {
                    let v = s.map_err(|e| on_err(e, count))?;
                    count += 1;
                    pending += v as f32 * scale;
                    in_frame += 1;
                    if in_frame == ch {
                        buf[got] = pending / ch as f32;
                        got += 1;
                        pending = 0.0;
                        in_frame = 0;
                    }
                }
            }
        }
        self.read += count;
        Ok(got)
    }
}

/// What a file that is not a regular file is, in words.
fn describe_file_type(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a pipe (FIFO), not a regular file; save it to a file first";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device, not a regular file; save the audio to a file first";
        }
        if kind.is_socket() {
            return "a socket, not a regular file; save the audio to a file first";
        }
    }
    if kind.is_dir() {
        "a directory, not a WAV file"
    } else {
        "not a regular file; save the audio to a file first"
    }
}

/// Converts a sample to 16-bit PCM with rounding and clamping.
pub fn f32_to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Writes a 16-bit PCM mono WAV stream whose length is known up front.
pub struct Pcm16Writer<W: Write> {
    out: W,
    left: u64,
    buf: zeroize::Zeroizing<Vec<u8>>,
}

impl<W: Write> Pcm16Writer<W> {
    /// Writes the header for `samples` samples at `sample_rate`.
    pub fn new(out: W, sample_rate: u32, samples: u64) -> io::Result<Self> {
        Self::with_chunk(out, sample_rate, samples, None)
    }

    /// As [`Self::new`], with an extra RIFF chunk `(id, body)` between `fmt ` and `data`
    /// (readers skip chunks they do not know).
    pub fn with_chunk(
        mut out: W,
        sample_rate: u32,
        samples: u64,
        extra: Option<([u8; 4], &[u8])>,
    ) -> io::Result<Self> {
        let extra_len = extra.map_or(0, |(_, b)| 8 + b.len() as u64 + (b.len() as u64 & 1));
        let data_len = samples
            .checked_mul(2)
            .filter(|&n| n + extra_len <= u32::MAX as u64 - 36)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the take is too long for one WAV file (4 GiB)",
                )
            })? as u32;
        let mut h = Vec::with_capacity(44 + extra_len as usize);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&(36 + extra_len as u32 + data_len).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&1u16.to_le_bytes()); // mono
        h.extend_from_slice(&sample_rate.to_le_bytes());
        h.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // byte rate
        h.extend_from_slice(&2u16.to_le_bytes()); // block align
        h.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        if let Some((id, body)) = extra {
            h.extend_from_slice(&id);
            h.extend_from_slice(&(body.len() as u32).to_le_bytes());
            h.extend_from_slice(body);
            if body.len() % 2 == 1 {
                h.push(0); // chunks are padded to an even length
            }
        }
        h.extend_from_slice(b"data");
        h.extend_from_slice(&data_len.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self {
            out,
            left: samples,
            buf: zeroize::Zeroizing::new(Vec::with_capacity(16 * 1024)),
        })
    }

    /// Writes samples; more than announced is an error.
    pub fn write(&mut self, samples: &[f32]) -> io::Result<()> {
        if samples.len() as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "more samples than the WAV header announced",
            ));
        }
        for part in samples.chunks(8 * 1024) {
            self.buf.clear();
            for &s in part {
                self.buf.extend_from_slice(&f32_to_i16(s).to_le_bytes());
            }
            self.out.write_all(&self.buf)?;
        }
        self.left -= samples.len() as u64;
        Ok(())
    }

    /// Checks that exactly the announced samples were written and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        if self.left != 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} samples fewer than the WAV header announced", self.left),
            ));
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_hound(path: &Path, spec: hound::WavSpec, frames: usize) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for c in 0..spec.channels {
                let v = ((i as f32 * 0.01).sin() * 0.5) * if c == 0 { 1.0 } else { 0.5 };
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(v).unwrap(),
                    (_, b) => w
                        .write_sample((v * (1i64 << (b - 1)) as f32) as i32)
                        .unwrap(),
                }
            }
        }
        w.finalize().unwrap();
    }

    fn read_all(path: &Path) -> Result<Vec<f32>, WavError> {
        let mut r = WavInput::open(path)?;
        let mut out = Vec::new();
        let mut buf = [0f32; 777];
        loop {
            let n = r.read_mono(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn reads_every_supported_format_as_mono() {
        let dir = tempfile::tempdir().unwrap();
        for (fmt, bits) in [
            (hound::SampleFormat::Int, 8),
            (hound::SampleFormat::Int, 16),
            (hound::SampleFormat::Int, 24),
            (hound::SampleFormat::Int, 32),
            (hound::SampleFormat::Float, 32),
        ] {
            for channels in [1, 2] {
                for rate in [8000, 44_100, 96_000] {
                    let p = dir.path().join(format!("{bits}-{channels}-{rate}.wav"));
                    let spec = hound::WavSpec {
                        channels,
                        sample_rate: rate,
                        bits_per_sample: bits,
                        sample_format: fmt,
                    };
                    write_hound(&p, spec, 5000);
                    let r = WavInput::open(&p).unwrap();
                    assert_eq!(
                        (r.sample_rate(), r.channels(), r.frames()),
                        (rate, channels, 5000)
                    );
                    let got = read_all(&p).unwrap();
                    assert_eq!(got.len(), 5000);
                    let gain = if channels == 2 { 0.75 } else { 1.0 };
                    let tol = if bits == 8 { 0.02 } else { 1e-3 };
                    for (i, g) in got.iter().enumerate().step_by(97) {
                        let want = (i as f32 * 0.01).sin() * 0.5 * gain;
                        assert!(
                            (g - want).abs() < tol,
                            "{bits}-bit {channels}ch: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write_hound(&p, spec, 1000);
        let good = std::fs::read(&p).unwrap();

        // Truncated data (the header says 1000 samples).
        std::fs::write(&p, &good[..44 + 1200]).unwrap();
        let e = read_all(&p).unwrap_err();
        assert!(
            matches!(
                e,
                WavError::Truncated {
                    expected: 1000,
                    got: 600,
                    ..
                }
            ),
            "{e}"
        );

        // Header lying about length (claims more).
        let mut lying = good.clone();
        lying[40..44].copy_from_slice(&100_000u32.to_le_bytes());
        std::fs::write(&p, &lying).unwrap();
        assert!(matches!(
            read_all(&p).unwrap_err(),
            WavError::Truncated { .. }
        ));

        // Cut inside the header; zero-length file; not a WAV at all.
        for bytes in [&good[..20], &[][..], &b"hello world, not audio"[..]] {
            std::fs::write(&p, bytes).unwrap();
            let e = read_all(&p).unwrap_err();
            assert!(matches!(e, WavError::Malformed { .. }), "{e}");
        }

        // Huge sample rate.
        let mut huge = good.clone();
        huge[24..28].copy_from_slice(&4_000_000u32.to_le_bytes());
        huge[28..32].copy_from_slice(&8_000_000u32.to_le_bytes()); // byte rate, kept consistent
        std::fs::write(&p, &huge).unwrap();
        let e = read_all(&p).unwrap_err();
        assert!(e.to_string().contains("sample rate 4000000 Hz"), "{e}");

        // A valid but empty WAV reads as zero samples.
        write_hound(&p, spec, 0);
        assert!(read_all(&p).unwrap().is_empty());

        // Missing file.
        assert!(matches!(
            WavInput::open(&dir.path().join("nope.wav")),
            Err(WavError::Io { .. })
        ));
    }

    /// Found by the `wav_reader` fuzz target: downmixing float channels near f32::MAX summed to
    /// infinity; the reader promises finite samples (non-finite ones already read as 0).
    #[test]
    fn huge_float_samples_downmix_to_finite_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hot.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for pair in [
            [f32::MAX, f32::MAX],
            [f32::MAX, -f32::MAX],
            [f32::INFINITY, 0.5],
            [0.25, 0.75],
        ] {
            w.write_sample(pair[0]).unwrap();
            w.write_sample(pair[1]).unwrap();
        }
        w.finalize().unwrap();
        let got = read_all(&p).unwrap();
        assert!(got.iter().all(|s| s.is_finite()), "{got:?}");
        assert_eq!(got, [f32::MAX, 0.0, 0.25, 0.5]);
    }

    #[test]
    fn pcm16_writer_output_reads_back_with_hound() {
        let samples: Vec<f32> = (0..3000).map(|i| (i as f32 * 0.02).sin() * 0.9).collect();
        let mut w = Pcm16Writer::new(Vec::new(), 22_050, samples.len() as u64).unwrap();
        w.write(&samples[..1000]).unwrap();
        w.write(&samples[1000..]).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = hound::WavReader::new(&bytes[..]).unwrap();
        assert_eq!(
            r.spec(),
            hound::WavSpec {
                channels: 1,
                sample_rate: 22_050,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int
            }
        );
        let back: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back.len(), 3000);
        assert_eq!(back[123], f32_to_i16(samples[123]));
        assert_eq!(f32_to_i16(1.5), i16::MAX);
        assert_eq!(f32_to_i16(-1.0), i16::MIN);
    }

    /// The sealed WAV's extra chunk (the manifest binding) sits between `fmt ` and `data`;
    /// hound skips it and reads the same samples, and the RIFF size counts it.
    #[test]
    fn an_extra_chunk_is_skipped_by_readers() {
        let samples: Vec<f32> = (0..500).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let body = br#"{"sample_id":"x"} "#;
        let chunk = Some((*b"vxsb", &body[..]));
        let mut w = Pcm16Writer::with_chunk(Vec::new(), 16_000, 500, chunk).unwrap();
        w.write(&samples).unwrap();
        let bytes = w.finish().unwrap();
        let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff + 8, bytes.len());
        assert_eq!(
            crate::sealing::binding::wav_data_offset(&bytes),
            Some(44 + 8 + body.len() as u64)
        );
        let mut r = hound::WavReader::new(&bytes[..]).unwrap();
        let back: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back.len(), 500);
        assert_eq!(back[77], f32_to_i16(samples[77]));
    }

    #[test]
    fn pcm16_writer_refuses_wrong_counts() {
        let mut w = Pcm16Writer::new(Vec::new(), 16_000, 10).unwrap();
        assert!(w.write(&[0.0; 11]).is_err());
        w.write(&[0.0; 5]).unwrap();
        assert!(w.finish().is_err());
    }

    /// A FIFO is refused without opening it (opening blocks until a writer comes, and the
    /// file would be read twice); a directory is named as one.
    #[cfg(unix)]
    #[test]
    fn pipes_and_directories_are_refused_before_opening() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in.wav");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = WavInput::open(&fifo).err().expect("refused");
            assert!(matches!(e, WavError::NotRegular { .. }), "{e}");
            assert!(e.to_string().contains("save it to a file first"), "{e}");
        }
        let e = WavInput::open(dir.path()).err().expect("refused");
        assert!(e.to_string().contains("a directory"), "{e}");
    }
}
