//! Sealing: a take made into WAV and features, encrypted with age to the project's
//! recipients and bound to its manifest; and opening them again.

pub mod age_writer;
pub mod binding;
pub mod keys;
pub mod open;
pub mod seal;
pub mod wav;
