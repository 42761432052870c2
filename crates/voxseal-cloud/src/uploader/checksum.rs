//! Part checksums: which algorithm a multipart upload's parts carry, and the COMPOSITE checksum
//! of an upload that S3 must answer on completion.

use aws_sdk_s3::types::ChecksumAlgorithm;
use base64::Engine;
use sha2::{Digest, Sha256};
use voxseal_core::store::outbox::{DonePart, PartChecksum};

use super::{UploadError, b64};

/// The part checksum new multipart uploads use (see [`PartChecksum::Crc32c`]).
pub(super) const PART_CHECKSUM: PartChecksum = PartChecksum::Crc32c;

/// [`PartChecksum`] as the uploader uses it.
pub(super) trait PartChecksumExt {
    /// The SDK's name for it.
    fn sdk(self) -> ChecksumAlgorithm;
    /// The raw checksum of `bytes`.
    fn raw(self, bytes: &[u8]) -> Vec<u8>;
    /// Its length in bytes.
    fn len(self) -> usize;
    /// The base64 checksum of `bytes`, as S3 sends it.
    fn of(self, bytes: &[u8]) -> String;
}

impl PartChecksumExt for PartChecksum {
    fn sdk(self) -> ChecksumAlgorithm {
        match self {
            PartChecksum::Sha256 => ChecksumAlgorithm::Sha256,
            PartChecksum::Crc32c => ChecksumAlgorithm::Crc32C,
        }
    }
    fn raw(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            PartChecksum::Sha256 => Sha256::digest(bytes).to_vec(),
            PartChecksum::Crc32c => crc32c::crc32c(bytes).to_be_bytes().to_vec(),
        }
    }
    fn len(self) -> usize {
        match self {
            PartChecksum::Sha256 => 32,
            PartChecksum::Crc32c => 4,
        }
    }
    fn of(self, bytes: &[u8]) -> String {
        b64(&self.raw(bytes))
    }
}

/// The COMPOSITE checksum S3 answers for a multipart object made of `parts` (sorted by number):
/// the `algorithm` checksum of the concatenated raw part checksums S3 acknowledged, then `-N`.
/// No second pass over the file.
pub(super) fn composite_of_parts(
    algorithm: PartChecksum,
    parts: &[DonePart],
) -> Result<String, UploadError> {
    let mut raw = Vec::with_capacity(parts.len() * algorithm.len());
    for p in parts {
        let digest = base64::engine::general_purpose::STANDARD
            .decode(&p.checksum)
            .ok()
            .filter(|d| d.len() == algorithm.len())
            .ok_or_else(|| {
                UploadError::Local(format!(
                    "part {}: saved checksum {:?} is not a base64 {algorithm:?}",
                    p.number, p.checksum
                ))
            })?;
        raw.extend_from_slice(&digest);
    }
    Ok(format!("{}-{}", algorithm.of(&raw), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uploader::MIB;

    fn part(algorithm: PartChecksum, number: i32, bytes: &[u8]) -> DonePart {
        DonePart {
            number,
            etag: String::new(),
            checksum: algorithm.of(bytes),
        }
    }

    #[test]
    fn composite_of_parts_is_the_checksum_of_the_part_checksums() {
        // A 20 MiB + 3 byte object in 8 MiB parts, computed the long way: the checksum of the
        // concatenated raw part checksums, then "-N".
        let data: Vec<u8> = (0..20 * MIB + 3).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(8 * MIB as usize).collect();
        let mut outer = Sha256::new();
        let mut crcs = Vec::new();
        for c in &chunks {
            outer.update(Sha256::digest(c));
            crcs.extend_from_slice(&crc32c::crc32c(c).to_be_bytes());
        }
        for (algorithm, want) in [
            (
                PartChecksum::Sha256,
                format!("{}-3", b64(&outer.finalize())),
            ),
            (
                PartChecksum::Crc32c,
                format!("{}-3", b64(&crc32c::crc32c(&crcs).to_be_bytes())),
            ),
        ] {
            let parts: Vec<DonePart> = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| part(algorithm, i as i32 + 1, c))
                .collect();
            assert_eq!(composite_of_parts(algorithm, &parts).unwrap(), want);
            // Order matters: S3 combines the parts by number.
            let mut swapped = parts.clone();
            swapped.swap(0, 1);
            assert_ne!(composite_of_parts(algorithm, &swapped).unwrap(), want);
        }
    }

    #[test]
    fn crc32c_is_the_castagnoli_crc() {
        // RFC 3720's check value for "123456789", as S3 sends it (big-endian, base64).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(PartChecksum::Crc32c.of(b"123456789"), "4waSgw==");
    }

    #[test]
    fn a_saved_part_checksum_of_the_wrong_kind_is_an_error() {
        for (algorithm, bad) in [
            (PartChecksum::Sha256, ""),
            (PartChecksum::Sha256, "not base64!"),
            (PartChecksum::Sha256, "4waSgw=="),
            (PartChecksum::Crc32c, "AAAA"),
            (PartChecksum::Crc32c, &b64(&[0u8; 32])),
        ] {
            let p = DonePart {
                number: 2,
                etag: String::new(),
                checksum: bad.to_owned(),
            };
            let err = composite_of_parts(algorithm, &[part(algorithm, 1, b"x"), p]).unwrap_err();
            assert!(
                err.to_string().contains("part 2"),
                "{algorithm:?} {bad}: {err}"
            );
        }
    }
}
