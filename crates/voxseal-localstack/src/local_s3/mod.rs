//! The embedded S3 endpoint of the local stack.
//!
//! A real HTTP server on 127.0.0.1 that the AWS SDK and the AWS CLI talk to with SigV4. Storage is
//! [`s3s_fs::FileSystem`] (objects are plain files under `root/<bucket>/<key>`); the protocol,
//! SigV4 (including aws-chunked bodies with checksum trailers) and routing come from `s3s`.
//!
//! # Enforcement
//! Every request is authenticated against a [`GrantStore`]: the access key must exist
//! (`InvalidAccessKeyId`), the signature must verify (`SignatureDoesNotMatch`, checked by s3s),
//! the `x-amz-security-token` must be the grant's (`InvalidToken`) and the grant must not have
//! expired (`ExpiredToken`). Anonymous requests get `AccessDenied`. Admin grants may do
//! everything. Contractor grants get what the session policy of [`voxseal_cloud::policy`] allows on AWS
//! and nothing else (`AccessDenied`): `PutObject` and the multipart-upload actions, on keys under
//! the grant's prefixes of the grant's bucket; `PutObject` and `CreateMultipartUpload` must ask
//! for SSE-KMS under the grant's key; the other allowed requests carry no SSE headers, and if they
//! do, the headers must name the same.
//!
//! # What this adds to s3s-fs 0.14
//! - `If-None-Match: *` on `PutObject` and `CompleteMultipartUpload` is atomic: object writes are
//!   serialized per (bucket, key).
//! - Checksums (`x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}` as headers or aws-chunked
//!   trailers, and `Content-MD5`) are verified while the body streams, before the file is moved
//!   into place: a mismatch is `BadDigest` and leaves no object behind and an earlier object at
//!   the key untouched.
//! - SSE: the requested algorithm and KMS key id are recorded per object (a JSON sidecar under
//!   `root/.voxseal/`, which s3s-fs neither lists nor serves) and returned by `PutObject`,
//!   `CompleteMultipartUpload`, `HeadObject` and `GetObject`. Nothing is actually encrypted: the
//!   payloads Voxseal uploads are age ciphertext already.
//! - Multipart checksums: parts are verified and their checksums recorded; `ListParts` returns
//!   them; `CompleteMultipartUpload` checks the ones the client lists and returns S3's
//!   `COMPOSITE` checksum (the checksum of the concatenated raw part checksums, then `-N`).
//! - Multipart uploads belong to their (bucket, key), not to the access key that created them,
//!   as on S3: a contractor whose credentials were refreshed mid-upload can finish it.
//! - ETags as on S3 without the work s3s-fs does for them: parts of SSE-KMS uploads are written
//!   here, with opaque ETags (S3's ETag of an SSE-KMS object is not an MD5 of its data), instead
//!   of s3s-fs hashing every byte with MD5; other parts keep s3s-fs's MD5 ETag, recorded.
//!   `CompleteMultipartUpload` is done here too: the parts are concatenated in the kernel
//!   (`copy_file_range`) and the ETag comes from the recorded part ETags (MD5 of the part MD5s,
//!   `-N`; opaque for SSE-KMS), where s3s-fs reads the whole object back to hash it again. A
//!   listed part ETag must be the one the part was acknowledged with (`InvalidPart`). These
//!   steps write s3s-fs's own files (part files, upload record, ETag and attribute sidecars)
//!   under the names of the pinned s3s-fs 0.14.1; uploads with an `If-Match` condition or with
//!   parts recorded before ETags were kept are completed by s3s-fs.
//!
//! Limits: no versioning, ACLs, tagging, `UploadPartCopy` or `ListMultipartUploads`; part
//! numbers must be consecutive from 1 (an s3s-fs rule); keys with empty, `.` or `..` segments are
//! refused (they would alias other paths on the filesystem).

mod auth;
mod checksums;
mod s3_api;
mod server;
mod store;
#[cfg(test)]
mod tests;

pub use server::{LocalS3, LocalS3Error};
