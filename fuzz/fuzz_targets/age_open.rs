//! `open::open_file` (the age crate's parser and decryptor, then Voxseal's hash check and its
//! WAV / safetensors summary of the plaintext) with a fixed identity.
//!
//! Raw mode: the input is the file (seeds are real sealed payloads encrypted to the fixed
//! identity, so mutations reach the decryptor). Structured mode: the harness encrypts the
//! fuzzer's plaintext to the fixed recipient with Voxseal's own encryptor (`age_writer`, the one
//! sealing uses, so its output meets the age crate's decryptor at every length) and optionally
//! flips, cuts or extends the ciphertext, which reaches the plaintext parsers (age's header MAC
//! would stop a raw fuzzer).
//!
//! Checked: no panic; an unaltered file with the right hash opens or is refused only for its
//! content (`BadContent`) and reports the plaintext's exact size; an altered file never opens.
#![no_main]

use std::io::Write;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use voxseal_core::sealing::age_writer::AgeWriter;
use voxseal_core::project::manifest::PayloadKind;
use voxseal_core::sealing::open::{OpenError, open_file};
use voxseal_fuzz::encode::{AGE_IDENTITY, AgeInput, Input};

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    identities: Vec<Box<dyn age::Identity>>,
    recipient: age::x25519::Recipient,
}

fn fixture() -> Fixture {
    let dir = voxseal_fuzz::scratch_dir();
    let id = age::x25519::Identity::from_str(AGE_IDENTITY).expect("a valid identity");
    let recipient = id.to_public();
    Fixture {
        path: dir.path().join("payload.age"),
        _dir: dir,
        identities: vec![Box::new(id)],
        recipient,
    }
}

thread_local! {
    // Identities are not Sync; libFuzzer calls the target from one thread.
    static FIXTURE: Fixture = fixture();
}

fn expected(flags: u8) -> Option<PayloadKind> {
    match (flags >> 1) & 3 {
        1 => Some(PayloadKind::Raw),
        2 => Some(PayloadKind::Features),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| FIXTURE.with(|f| run(f, data)));

fn run(f: &Fixture, data: &[u8]) {
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let wrong_hash = flags & 8 != 0;
    let (file, plaintext, altered) = if flags & 1 == 0 {
        (inp.rest().to_vec(), None, None)
    } else {
        let a = AgeInput::decode(flags, &mut inp);
        let mut ct = Vec::new();
        let mut w =
            AgeWriter::new(&mut ct, std::slice::from_ref(&f.recipient)).expect("one recipient");
        w.write_all(&a.plaintext).expect("encrypt to memory");
        w.finish().expect("encrypt to memory");
        let original = ct.clone();
        let at = a.at as usize;
        match a.mutation {
            1 => {
                let i = at % ct.len();
                ct[i] ^= 1 << (at % 8);
            }
            2 => ct.truncate(at % ct.len()),
            3 => ct.extend(std::iter::repeat_n(0x5a, at % 256 + 1)),
            _ => {}
        }
        let altered = ct != original;
        (ct, Some(a.plaintext), Some((altered, a.mutation)))
    };
    voxseal_fuzz::put(&f.path, &file);
    let hash = hex::encode(Sha256::digest(&file));
    let want = if wrong_hash { "0".repeat(64) } else { hash };
    let result = open_file(
        &f.path,
        &f.identities,
        expected(flags).map(|k| (k, want.as_str())),
        None,
    );
    let (Some(plain), Some((altered, mutation))) = (plaintext, altered) else {
        return;
    };
    if !altered {
        match &result {
            Ok(o) => {
                assert_eq!(o.plain_bytes, plain.len() as u64);
                assert!(
                    !(wrong_hash && expected(flags).is_some()),
                    "a wrong hash was accepted"
                );
            }
            Err(OpenError::BadContent { .. }) => {}
            Err(OpenError::HashMismatch { .. }) if wrong_hash => {}
            Err(e) => panic!("an unaltered file was refused: {e}"),
        }
    } else if mutation != 3 {
        // Flipped or cut ciphertext must never open (age authenticates header and payload).
        assert!(
            result.is_err(),
            "an altered file opened: {:?}",
            result.map(|o| o.summary)
        );
    }
}
