//! Capture: audio sources (microphone, files, synthetic), the recorder thread, and the
//! encrypted spool a take is written to while it records.

pub mod audio;
pub mod recorder;
pub mod spool;
