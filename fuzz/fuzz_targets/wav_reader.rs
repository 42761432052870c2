//! `WavInput::open` + `read_mono` to the end on arbitrary bytes. A reader that reaches the end
//! without an error must have produced exactly the frames its header declares; memory must not
//! follow lying header sizes (libFuzzer's -rss_limit_mb / -malloc_limit_mb catch that).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use voxseal_core::sealing::wav::WavInput;

fn path() -> &'static std::path::Path {
    static P: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    &P.get_or_init(|| {
        let d = voxseal_fuzz::scratch_dir();
        let p = d.path().join("input.wav");
        (d, p)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let p = path();
    voxseal_fuzz::put(p, data);
    let Ok(mut r) = WavInput::open(p) else {
        return;
    };
    let declared = r.frames();
    let _ = (r.sample_rate(), r.channels(), r.format());
    let mut buf = [0f32; 777];
    let mut frames = 0u64;
    loop {
        match r.read_mono(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= buf.len());
                assert!(buf[..n].iter().all(|s| s.is_finite()), "non-finite sample");
                frames += n as u64;
                assert!(frames <= data.len() as u64, "more frames than bytes");
            }
            Err(_) => return,
        }
    }
    assert_eq!(
        frames, declared,
        "a clean read ended short of the declared length"
    );
});
