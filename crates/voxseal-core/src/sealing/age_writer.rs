//! An age v1 encryptor with the payload on RustCrypto's ChaCha20-Poly1305 (0.11).
//!
//! Why not `age::Encryptor`: its STREAM payload runs on chacha20poly1305 0.10, which seals at
//! about 1.1 GB/s here against Go `age`'s 1.6-1.7; 0.11 with chacha20's AVX-512 backend
//! (`--cfg chacha20_avx512`, .cargo/config.toml) keeps pace with Go `age`, and it encrypts
//! straight from the caller's buffer into the output one (docs/performance.md has the numbers).
//! Everything that decides *who can decrypt* still comes from the `age` crate: the file key is
//! wrapped by [`age::Recipient::wrap_file_key`] and the key derivations are
//! `age_core::primitives::hkdf`. This module only lays out the bytes the age v1 spec
//! (<https://age-encryption.org/v1>) fixes:
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <ephemeral share>
//! <wrapped file key, base64, 64 columns>
//! --- <HMAC-SHA256 of everything before the space, key HKDF(file key, "header")>
//! <16-byte nonce><payload: 64 KiB chunks, ChaCha20-Poly1305 under HKDF(nonce, file key,
//!  "payload"), nonce = 11-byte big-endian chunk counter || 1 on the last chunk else 0>
//! ```
//!
//! The `age` crate's decryptor and the `age` CLI read what it writes (tests below and in the CLI
//! crate), which is the check that the layout is right.

use std::io::{self, Write};

use age_core::format::{FileKey, Stanza};
use age_core::primitives::hkdf;
use age_core::secrecy::ExposeSecret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305_payload::aead::inout::InOutBuf;
use chacha20poly1305_payload::aead::{AeadInOut, KeyInit};
use chacha20poly1305_payload::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Plaintext bytes per STREAM chunk (the age spec's 64 KiB).
pub const CHUNK: usize = 64 * 1024;
/// Poly1305 tag bytes after each chunk.
const TAG: usize = 16;
const INTRO: &[u8] = b"age-encryption.org/v1\n";
/// Body bytes per base64 line: 48 bytes are 64 columns.
const BODY_LINE: usize = 48;

/// Where an [`AgeWriter`] puts finished bytes: the header, then each sealed chunk.
///
/// It takes the whole buffer so that a consumer on another thread (the sealing pipeline's
/// hashing thread) can keep it and hand back another one instead of copying 64 KiB per chunk.
/// Any [`Write`] is one, by copying.
pub trait SealedOut {
    /// Consumes the bytes in `buf`. What `buf` holds afterwards is unspecified (possibly
    /// another buffer, possibly stale bytes): the writer overwrites it.
    fn put(&mut self, buf: &mut Vec<u8>) -> io::Result<()>;
}

impl<W: Write> SealedOut for W {
    fn put(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.write_all(buf)
    }
}

/// Streams plaintext into an age v1 file on `inner`. Call [`AgeWriter::finish`] at the end:
/// the last chunk is only written then (it carries the last-chunk flag); dropping the writer
/// without it leaves a file every age reader rejects as truncated.
pub struct AgeWriter<O: SealedOut> {
    inner: O,
    /// ChaCha20-Poly1305 under the payload key (zeroized on drop).
    cipher: ChaCha20Poly1305,
    /// Plaintext not sealed yet: at most one chunk, kept until more arrives or `finish`.
    pending: Zeroizing<Vec<u8>>,
    /// The chunk being sealed: ciphertext and tag. Handed on one chunk at a time: batches of
    /// 2 or 4 chunks measured 20% slower (the hash thread waits longer for each).
    sealed: Vec<u8>,
    counter: u64,
}

impl<O: SealedOut> AgeWriter<O> {
    /// Writes the header and nonce for `recipients` to `inner` and returns the writer for the
    /// payload.
    pub fn new(mut inner: O, recipients: &[age::x25519::Recipient]) -> io::Result<Self> {
        if recipients.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no recipients to encrypt to",
            ));
        }
        let file_key = FileKey::init_with_mut(|k| {
            getrandom::getrandom(k).expect("the operating system's random source failed")
        });
        let mut stanzas = Vec::with_capacity(recipients.len());
        for r in recipients {
            let (wrapped, _labels) = age::Recipient::wrap_file_key(r, &file_key)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            stanzas.extend(wrapped);
        }
        let mut header = header_bytes(&stanzas, file_key.expose_secret());
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce).expect("the operating system's random source failed");
        header.extend_from_slice(&nonce);

        let payload_key = Zeroizing::new(hkdf(&nonce, b"payload", file_key.expose_secret()));
        let cipher = ChaCha20Poly1305::new(&(*payload_key).into());
        inner.put(&mut header)?;
        Ok(Self {
            inner,
            cipher,
            pending: Zeroizing::new(Vec::with_capacity(CHUNK)),
            sealed: Vec::with_capacity(CHUNK + TAG),
            counter: 0,
        })
    }

    /// Seals `plaintext` as the next chunk (`pending` when `None`) and hands it on.
    fn seal(&mut self, plaintext: Option<&[u8]>, last: bool) -> io::Result<()> {
        let plaintext = plaintext.unwrap_or(&self.pending);
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        let len = plaintext.len();
        // Reuse whatever the buffer holds (a recycled one holds old ciphertext): every byte up
        // to `len + TAG` is overwritten, so only growth is zero-filled.
        self.sealed.resize(len + TAG, 0);
        let (out, tag) = self.sealed.split_at_mut(len);
        let buf = InOutBuf::new(plaintext, out).expect("the output is as long as the input");
        let t = self
            .cipher
            .encrypt_inout_detached(&Nonce::from(nonce), b"", buf)
            .map_err(|_| io::Error::other("ChaCha20-Poly1305 refused a chunk"))?;
        tag.copy_from_slice(&t);
        self.inner.put(&mut self.sealed)?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("more age chunks than the nonce counts"))?;
        Ok(())
    }

    /// Writes the last chunk and returns the inner writer.
    pub fn finish(mut self) -> io::Result<O> {
        self.seal(None, true)?;
        Ok(self.inner)
    }
}

impl<O: SealedOut> Write for AgeWriter<O> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        // A chunk is sealed only once more plaintext follows it, so the chunk that turns out to
        // be the last one still carries the flag when `finish` seals it.
        while !rest.is_empty() {
            if self.pending.len() == CHUNK {
                self.seal(None, false)?;
                self.pending.clear();
            }
            if self.pending.is_empty() {
                // Whole chunks with more after them go straight from the caller's buffer.
                while rest.len() > CHUNK {
                    self.seal(Some(&rest[..CHUNK]), false)?;
                    rest = &rest[CHUNK..];
                }
            }
            let n = rest.len().min(CHUNK - self.pending.len());
            self.pending.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(buf.len())
    }

    /// Nothing to do: bytes leave in whole chunks, and the last one only at `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The age v1 header for `stanzas`, with its MAC under `file_key`.
fn header_bytes(stanzas: &[Stanza], file_key: &[u8]) -> Vec<u8> {
    let mut h = INTRO.to_vec();
    for s in stanzas {
        h.extend_from_slice(b"-> ");
        h.extend_from_slice(s.tag.as_bytes());
        for a in &s.args {
            h.push(b' ');
            h.extend_from_slice(a.as_bytes());
        }
        h.push(b'\n');
        // Full 64-column lines, then a shorter (possibly empty) final line.
        let mut body = s.body.chunks_exact(BODY_LINE);
        for line in body.by_ref() {
            h.extend_from_slice(STANDARD_NO_PAD.encode(line).as_bytes());
            h.push(b'\n');
        }
        h.extend_from_slice(STANDARD_NO_PAD.encode(body.remainder()).as_bytes());
        h.push(b'\n');
    }
    h.extend_from_slice(b"---");
    let mac_key = Zeroizing::new(hkdf(&[], b"header", file_key));
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(mac_key.as_ref()).expect("HMAC takes any key");
    mac.update(&h);
    let mac = mac.finalize().into_bytes();
    h.push(b' ');
    h.extend_from_slice(STANDARD_NO_PAD.encode(mac).as_bytes());
    h.push(b'\n');
    h
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn seal(plaintext: &[u8], recipients: &[age::x25519::Recipient], writes: usize) -> Vec<u8> {
        let mut w = AgeWriter::new(Vec::new(), recipients).unwrap();
        let step = plaintext.len().div_ceil(writes.max(1)).max(1);
        for part in plaintext.chunks(step) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn open(ciphertext: &[u8], identity: &age::x25519::Identity) -> Result<Vec<u8>, String> {
        let d = age::Decryptor::new(ciphertext).map_err(|e| e.to_string())?;
        let mut r = d
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    #[test]
    fn the_age_crate_decrypts_every_chunk_boundary() {
        let id = age::x25519::Identity::generate();
        let r = id.to_public();
        for n in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            2 * CHUNK + 17,
            5 * CHUNK + 3,
        ] {
            let plain = pattern(n);
            for writes in [1, 3, 1000] {
                let sealed = seal(&plain, std::slice::from_ref(&r), writes);
                let chunks = n.div_ceil(CHUNK).max(1);
                assert_eq!(
                    sealed.len() - header_len(&sealed) - 16,
                    n + chunks * TAG,
                    "{n} bytes in {writes} writes: one tag per 64 KiB chunk, no empty last chunk"
                );
                assert_eq!(
                    open(&sealed, &id).unwrap(),
                    plain,
                    "{n} bytes, {writes} writes"
                );
            }
        }
    }

    fn header_len(sealed: &[u8]) -> usize {
        let end = sealed.windows(4).position(|w| w == b"\n---").unwrap();
        end + sealed[end + 1..].iter().position(|&b| b == b'\n').unwrap() + 2
    }

    #[test]
    fn every_recipient_can_decrypt_and_nobody_else() {
        let ids: Vec<_> = (0..3).map(|_| age::x25519::Identity::generate()).collect();
        let rs: Vec<_> = ids.iter().map(|i| i.to_public()).collect();
        let plain = pattern(3 * CHUNK / 2);
        let sealed = seal(&plain, &rs, 7);
        for id in &ids {
            assert_eq!(open(&sealed, id).unwrap(), plain);
        }
        let stranger = age::x25519::Identity::generate();
        assert!(open(&sealed, &stranger).is_err());
        assert_eq!(
            String::from_utf8_lossy(&sealed[..INTRO.len()]),
            "age-encryption.org/v1\n"
        );
        assert_eq!(sealed.windows(10).filter(|w| w == b"-> X25519 ").count(), 3);
    }

    #[test]
    fn tampering_anywhere_is_detected() {
        let id = age::x25519::Identity::generate();
        let plain = pattern(2 * CHUNK + 5);
        let sealed = seal(&plain, &[id.to_public()], 1);
        let h = header_len(&sealed);
        // In a stanza body, in the MAC, in the nonce, in the first and the last chunk.
        for at in [30, h - 5, h + 3, h + 16 + 100, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            assert!(
                open(&bad, &id).is_err(),
                "a flipped bit at {at} went unnoticed"
            );
        }
        // Dropping the last chunk (a writer that never finished) is truncation.
        let cut = &sealed[..sealed.len() - (5 + TAG)];
        assert!(open(cut, &id).is_err());
    }

    #[test]
    fn stanza_bodies_wrap_at_64_columns_with_a_short_last_line() {
        // X25519 bodies (32 bytes) are one short line; a 48-byte body is the edge case the
        // spec calls out: a full line, then an empty one.
        let key = [7u8; 16];
        let stanza = Stanza {
            tag: "X25519".into(),
            args: vec!["abc".into()],
            body: vec![0xAB; BODY_LINE],
        };
        let text = String::from_utf8(header_bytes(&[stanza], &key)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "age-encryption.org/v1");
        assert_eq!(lines[1], "-> X25519 abc");
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("--- ") && lines[4].len() == 4 + 43);
    }
}
