//! `Manifest::from_json` on arbitrary bytes. A manifest that parses must serialize and parse
//! again with the same payloads (what `voxseal open` and the uploader rely on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxseal_core::project::manifest::{Manifest, PayloadKind};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::from_json(data) else {
        return;
    };
    assert!(m.payload(PayloadKind::Features).is_some());
    assert_eq!(m.features_only, m.payload(PayloadKind::Raw).is_none());
    let again = serde_json::to_vec(&m).expect("a manifest serializes");
    let m2 = Manifest::from_json(&again).expect("a serialized manifest parses again");
    assert_eq!(m2.payloads, m.payloads);
    assert_eq!(m2.sample_id, m.sample_id);
    assert_eq!(m2.contractor, m.contractor);
});
