//! Part checksums: CRC32C of each multipart part, and the COMPOSITE checksum of an upload that S3
//! must answer on completion. Parts only need transport integrity (the age ciphertext
//! authenticates itself, and the manifest holds the whole file's SHA-256), and a CRC costs both
//! ends almost nothing.

use base64::Engine;
use voxseal_core::store::outbox::DonePart;

use super::{UploadError, b64};

/// The raw CRC32C of `bytes`, big-endian, as S3 combines them.
fn crc32c_raw(bytes: &[u8]) -> [u8; 4] {
    crc32c::crc32c(bytes).to_be_bytes()
}

/// The base64 CRC32C of `bytes`, as S3 sends it.
pub(super) fn part_checksum(bytes: &[u8]) -> String {
    b64(&crc32c_raw(bytes))
}

/// The COMPOSITE checksum S3 answers for a multipart object made of `parts` (sorted by number):
/// the CRC32C of the concatenated raw part CRCs S3 acknowledged, then `-N`. No second pass over
/// the file.
pub(super) fn composite_of_parts(parts: &[DonePart]) -> Result<String, UploadError> {
    let mut raw = Vec::with_capacity(parts.len() * 4);
    for p in parts {
        let digest = base64::engine::general_purpose::STANDARD
            .decode(&p.checksum)
            .ok()
            .filter(|d| d.len() == 4)
            .ok_or_else(|| {
                UploadError::Local(format!(
                    "part {}: saved checksum {:?} is not a base64 CRC32C",
                    p.number, p.checksum
                ))
            })?;
        raw.extend_from_slice(&digest);
    }
    Ok(format!("{}-{}", part_checksum(&raw), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uploader::MIB;

    fn part(number: i32, bytes: &[u8]) -> DonePart {
        DonePart {
            number,
            etag: String::new(),
            checksum: part_checksum(bytes),
        }
    }

    #[test]
    fn composite_of_parts_is_the_checksum_of_the_part_checksums() {
        // A 20 MiB + 3 byte object in 8 MiB parts, computed the long way: the CRC of the
        // concatenated raw part CRCs, then "-N".
        let data: Vec<u8> = (0..20 * MIB + 3).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(8 * MIB as usize).collect();
        let crcs: Vec<u8> = chunks.iter().flat_map(|c| crc32c_raw(c)).collect();
        let want = format!("{}-3", b64(&crc32c::crc32c(&crcs).to_be_bytes()));
        let parts: Vec<DonePart> = (chunks.iter().enumerate())
            .map(|(i, c)| part(i as i32 + 1, c))
            .collect();
        assert_eq!(composite_of_parts(&parts).unwrap(), want);
        // Order matters: S3 combines the parts by number.
        let mut swapped = parts.clone();
        swapped.swap(0, 1);
        assert_ne!(composite_of_parts(&swapped).unwrap(), want);
    }

    #[test]
    fn crc32c_is_the_castagnoli_crc() {
        // RFC 3720's check value for "123456789", as S3 sends it (big-endian, base64).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(part_checksum(b"123456789"), "4waSgw==");
    }

    #[test]
    fn a_saved_part_checksum_that_is_not_a_crc32c_is_an_error() {
        for bad in ["", "not base64!", "AAAA", &b64(&[0u8; 32])] {
            let p = DonePart {
                number: 2,
                etag: String::new(),
                checksum: bad.to_owned(),
            };
            let err = composite_of_parts(&[part(1, b"x"), p]).unwrap_err();
            assert!(err.to_string().contains("part 2"), "{bad}: {err}");
        }
    }
}
