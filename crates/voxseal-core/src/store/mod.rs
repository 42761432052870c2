//! On-disk state: the workspace, the outbox of sealed items and their upload progress, the
//! hash-chained audit log, secure wiping, atomic file writes, and the bucket's key layout.

pub mod audit;
pub mod audit_event;
mod crash_recovery;
pub mod fsutil;
pub mod key_layout;
pub mod outbox;
pub mod progress;
pub mod take;
pub mod wipe;
pub mod workspace;
