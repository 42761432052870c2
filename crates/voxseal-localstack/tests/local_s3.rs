//! The embedded S3 endpoint, driven over HTTP by the real aws-sdk-s3 client: grants enforced the
//! way IAM and the session policy are on AWS, atomic `If-None-Match`, checksums, SSE, multipart.

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ServerSideEncryption,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use voxseal_cloud::credentials::SessionCredentials;
use voxseal_core::project::ids::ContractorId;
use voxseal_localstack::grants::GrantStore;
use voxseal_localstack::local_s3::{LocalS3, LocalS3Error};

const BUCKET: &str = "voxseal-dev";
const REGION: &str = "us-east-1";
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KMS_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab";
const ADMIN_KEY: &str = "AKIAVOXSEALLOCAL0001";
const ADMIN_SECRET: &str = "local-admin-secret-0123456789abcdefghijkl";
const MIB: usize = 1024 * 1024;

struct Stack {
    s3: LocalS3,
    grants: GrantStore,
    admin: Client,
    _dir: tempfile::TempDir,
}

fn client(
    endpoint: &str,
    credentials: Credentials,
    checksums: RequestChecksumCalculation,
) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(Region::new(REGION))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .request_checksum_calculation(checksums)
        .build();
    Client::from_conf(config)
}

fn session_client(endpoint: &str, c: &SessionCredentials) -> Client {
    let creds = Credentials::new(
        &c.access_key_id,
        c.secret_access_key.expose_secret(),
        Some(c.session_token.expose_secret().to_owned()),
        None,
        "test",
    );
    client(endpoint, creds, RequestChecksumCalculation::WhenSupported)
}

impl Stack {
    /// A fresh endpoint in a temporary directory; the admin creates the bucket over HTTP.
    async fn new() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let grants = GrantStore::new();
        grants.add_admin(ADMIN_KEY, ADMIN_SECRET);
        let s3 = LocalS3::start(dir.path(), grants.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let admin = client(
            &s3.endpoint_url(),
            Credentials::new(ADMIN_KEY, ADMIN_SECRET, None, None, "test"),
            RequestChecksumCalculation::WhenSupported,
        );
        admin.create_bucket().bucket(BUCKET).send().await.unwrap();
        Stack {
            s3,
            grants,
            admin,
            _dir: dir,
        }
    }

    fn mint(&self, id: &str, lifetime: time::Duration) -> SessionCredentials {
        let id: ContractorId = id.parse().unwrap();
        self.grants.mint(&id, BUCKET, REGION, KMS_KEY, lifetime)
    }

    /// Mints a 15-minute grant for `id` and returns a client using it.
    fn contractor(&self, id: &str) -> Client {
        session_client(
            &self.s3.endpoint_url(),
            &self.mint(id, time::Duration::minutes(15)),
        )
    }

    /// The admin's GET of `key` (body and headers).
    async fn admin_object(&self, key: &str) -> GetObjectOutput {
        self.admin
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap()
    }

    /// The body of `key`, as the admin reads it.
    async fn admin_get(&self, key: &str) -> Vec<u8> {
        let got = self.admin_object(key).await;
        got.body.collect().await.unwrap().into_bytes().to_vec()
    }

    /// The admin uploads `body` as part `n` of `upload_id` (no checksum header).
    async fn admin_part(
        &self,
        key: &str,
        upload_id: &str,
        n: i32,
        body: &[u8],
    ) -> UploadPartOutput {
        self.admin
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(upload_id)
            .part_number(n)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .unwrap()
    }

    /// The admin's HEAD of `key`, with checksums.
    async fn admin_head(&self, key: &str) -> HeadObjectOutput {
        self.admin
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap()
    }

    /// The endpoint's leftovers of multipart uploads in its store directory: s3s-fs's part and
    /// upload files and temporary files.
    fn multipart_leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self._dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload") || n.starts_with(".tmp"))
            .collect()
    }

    async fn admin_exists(&self, key: &str) -> bool {
        match self
            .admin
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
        {
            Ok(_) => true,
            Err(err) => {
                assert_eq!(status(&err), 404, "{err:?}");
                false
            }
        }
    }
}

fn sha256_b64(data: &[u8]) -> String {
    BASE64.encode(Sha256::digest(data))
}

/// A PutObject the way the Voxseal uploader sends it: SSE-KMS under the project key, SHA-256.
fn sealed_put(c: &Client, key: &str, body: &[u8]) -> PutObjectFluentBuilder {
    c.put_object()
        .bucket(BUCKET)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(KMS_KEY)
        .checksum_sha256(sha256_b64(body))
        .body(ByteStream::from(body.to_vec()))
}

fn status<E>(err: &SdkError<E, HttpResponse>) -> u16 {
    err.raw_response().map_or(0, |r| r.status().as_u16())
}

/// The error code and HTTP status of a request that must fail.
fn failure<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> (String, u16) {
    let err = result.expect_err("the request should have been refused");
    (err.code().unwrap_or("<no code>").to_owned(), status(&err))
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn contractor_upload_is_stored_with_sse_and_checksum() {
    let stack = Stack::new().await;
    let alice = stack.contractor("alice-01");
    let key = "raw/alice-01/2026/03/14/s1-0a1b2c3d.wav.age";
    let body = data(100_000, 7);

    let put = sealed_put(&alice, key, &body)
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    assert_eq!(put.checksum_sha256(), Some(sha256_b64(&body).as_str()));
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(put.ssekms_key_id(), Some(KMS_KEY));

    let head = stack.admin_head(key).await;
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(head.ssekms_key_id(), Some(KMS_KEY));
    assert_eq!(head.checksum_sha256(), Some(sha256_b64(&body).as_str()));
    assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(stack.admin_get(key).await, body);

    // The same key again: "already stored by an earlier try".
    let (code, status) = failure(
        sealed_put(&alice, key, &body)
            .if_none_match("*")
            .send()
            .await,
    );
    assert_eq!((code.as_str(), status), ("PreconditionFailed", 412));

    // The endpoint's own records are not objects or buckets.
    let listed = stack
        .admin
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key]);
    let buckets = stack.admin.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, [BUCKET]);
}

#[tokio::test]
async fn contractor_is_denied_everything_its_grant_does_not_cover() {
    let stack = Stack::new().await;
    stack.s3.create_bucket("someone-elses-bucket").unwrap();
    let alice = stack.contractor("alice-01");
    let own = "raw/alice-01/2026/03/14/s1.wav.age";
    let body = b"ciphertext".as_slice();
    sealed_put(&stack.admin, own, body).send().await.unwrap();

    let denied = |what: &str, (code, status): (String, u16)| {
        assert_eq!((code.as_str(), status), ("AccessDenied", 403), "{what}");
    };
    for key in [
        "raw/bob-02/2026/03/14/s1.wav.age",
        "features/bob-02/x.safetensors.age",
        "other/alice-01/x",
        "raw/alice-01x/x",
        "raw/alice-01",
        "alice-01/x",
    ] {
        denied(key, failure(sealed_put(&alice, key, body).send().await));
    }
    let elsewhere = sealed_put(&alice, own, body)
        .bucket("someone-elses-bucket")
        .send()
        .await;
    denied("other bucket", failure(elsewhere));

    // Read, list, delete, copy: not for upload credentials, not even on their own keys.
    denied(
        "GetObject",
        failure(alice.get_object().bucket(BUCKET).key(own).send().await),
    );
    // HEAD responses have no body, so the SDK sees only the status.
    let head = alice
        .head_object()
        .bucket(BUCKET)
        .key(own)
        .send()
        .await
        .expect_err("HeadObject");
    assert_eq!(status(&head), 403, "{head:?}");
    denied(
        "ListObjectsV2",
        failure(alice.list_objects_v2().bucket(BUCKET).send().await),
    );
    denied(
        "ListObjectsV2 own prefix",
        failure(
            alice
                .list_objects_v2()
                .bucket(BUCKET)
                .prefix("raw/alice-01/")
                .send()
                .await,
        ),
    );
    denied(
        "ListObjects",
        failure(alice.list_objects().bucket(BUCKET).send().await),
    );
    denied(
        "DeleteObject",
        failure(alice.delete_object().bucket(BUCKET).key(own).send().await),
    );
    denied("ListBuckets", failure(alice.list_buckets().send().await));
    denied(
        "CreateBucket",
        failure(alice.create_bucket().bucket("new-bucket").send().await),
    );
    let copy = alice
        .copy_object()
        .bucket(BUCKET)
        .key("raw/alice-01/copy.wav.age")
        .copy_source(format!("{BUCKET}/{own}"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(KMS_KEY)
        .send()
        .await;
    denied("CopyObject", failure(copy));

    // Encryption: SSE-KMS under the project key only.
    let key = "raw/alice-01/2026/03/14/s2.wav.age";
    let plain = alice
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .checksum_sha256(sha256_b64(body))
        .body(ByteStream::from_static(b"ciphertext"));
    denied("no SSE", failure(plain.send().await));
    let sse_s3 = alice
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"ciphertext"));
    denied("SSE AES256", failure(sse_s3.send().await));
    let no_key_id = alice
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .body(ByteStream::from_static(b"ciphertext"));
    denied("aws:kms without the key", failure(no_key_id.send().await));
    denied(
        "wrong KMS key",
        failure(
            sealed_put(&alice, key, body)
                .ssekms_key_id(OTHER_KMS_KEY)
                .send()
                .await,
        ),
    );
    let mpu = alice
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await;
    denied("CreateMultipartUpload without SSE", failure(mpu));
    let mpu = alice
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(OTHER_KMS_KEY)
        .send()
        .await;
    denied("CreateMultipartUpload with another key", failure(mpu));

    // `..` would resolve to another contractor's directory on the filesystem.
    let sneaky = "raw/alice-01/../bob-02/s1.wav.age";
    let (code, status) = failure(sealed_put(&alice, sneaky, body).send().await);
    assert_eq!((code.as_str(), status), ("InvalidArgument", 400));

    // Nothing but the admin's object was written.
    let listed = stack
        .admin
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [own]);
    assert!(!stack.admin_exists("raw/bob-02/s1.wav.age").await);
}

#[tokio::test]
async fn an_expired_grant_gets_expired_token() {
    let stack = Stack::new().await;
    let creds = stack.mint("alice-01", time::Duration::seconds(1));
    let alice = session_client(&stack.s3.endpoint_url(), &creds);
    sealed_put(&alice, "raw/alice-01/before.wav.age", b"x")
        .send()
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (code, status) = failure(
        sealed_put(&alice, "raw/alice-01/after.wav.age", b"x")
            .send()
            .await,
    );
    assert_eq!((code.as_str(), status), ("ExpiredToken", 400));
    let err = sealed_put(&alice, "raw/alice-01/after.wav.age", b"x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.message(), Some("The provided token has expired."));
    assert!(!stack.admin_exists("raw/alice-01/after.wav.age").await);
}

#[tokio::test]
async fn bad_credentials_are_refused_with_the_aws_error_codes() {
    let stack = Stack::new().await;
    let endpoint = stack.s3.endpoint_url();
    let creds = stack.mint("alice-01", time::Duration::minutes(15));
    let key = "raw/alice-01/s.wav.age";
    let with = |access_key: &str, secret: &str, token: Option<&str>| {
        let c = Credentials::new(access_key, secret, token.map(str::to_owned), None, "test");
        client(&endpoint, c, RequestChecksumCalculation::WhenSupported)
    };
    let (ak, sk, token) = (
        &creds.access_key_id,
        creds.secret_access_key.expose_secret(),
        creds.session_token.expose_secret(),
    );

    let mut tampered = token.to_owned();
    tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
    let cases = [
        (
            "tampered token",
            with(ak, sk, Some(&tampered)),
            "InvalidToken",
            400,
        ),
        ("no token", with(ak, sk, None), "InvalidToken", 400),
        (
            "token on the admin key",
            with(ADMIN_KEY, ADMIN_SECRET, Some(token)),
            "InvalidToken",
            400,
        ),
        (
            "unknown key",
            with("ASIAUNKNOWNUNKNOWN00", sk, Some(token)),
            "InvalidAccessKeyId",
            403,
        ),
        (
            "wrong secret",
            with(ak, &format!("{sk}x"), Some(token)),
            "SignatureDoesNotMatch",
            403,
        ),
    ];
    for (what, c, want_code, want_status) in cases {
        let (code, status) = failure(sealed_put(&c, key, b"x").send().await);
        assert_eq!((code.as_str(), status), (want_code, want_status), "{what}");
    }

    let anonymous = Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .region(Region::new(REGION))
            .allow_no_auth()
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let (code, status) = failure(sealed_put(&anonymous, key, b"x").send().await);
    assert_eq!((code.as_str(), status), ("AccessDenied", 403), "anonymous");

    // The real ones work, until the contractor is revoked.
    let alice = session_client(&endpoint, &creds);
    sealed_put(&alice, key, b"x").send().await.unwrap();
    stack.grants.revoke(&"alice-01".parse().unwrap());
    let (code, status) = failure(
        sealed_put(&alice, "raw/alice-01/t.wav.age", b"x")
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), status),
        ("InvalidAccessKeyId", 403),
        "revoked"
    );
}

#[tokio::test]
async fn concurrent_if_none_match_puts_have_exactly_one_winner() {
    let stack = Stack::new().await;
    let alice = stack.contractor("alice-01");
    let key = "manifests/alice-01/2026/03/14/s1.json";
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16u8 {
        let alice = alice.clone();
        tasks.spawn(async move {
            let body = data(64 * 1024, i);
            let result = sealed_put(&alice, key, &body)
                .if_none_match("*")
                .send()
                .await;
            (
                body,
                result.map_err(|e| (e.code().map(str::to_owned), status(&e))),
            )
        });
    }
    let mut winners = Vec::new();
    let mut refused = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (body, Ok(_)) => winners.push(body),
            (_, Err((code, status))) => {
                assert_eq!((code.as_deref(), status), (Some("PreconditionFailed"), 412));
                refused += 1;
            }
        }
    }
    assert_eq!((winners.len(), refused), (1, 15));
    assert_eq!(
        stack.admin_get(key).await,
        winners[0],
        "the stored object is the winner's"
    );
}

#[tokio::test]
async fn a_wrong_checksum_is_bad_digest_and_stores_nothing() {
    let stack = Stack::new().await;
    let alice = stack.contractor("alice-01");
    let key = "raw/alice-01/2026/03/14/bad.wav.age";
    let body = data(200_000, 1);

    let wrong = sha256_b64(b"something else");
    let (code, status) = failure(
        sealed_put(&alice, key, &body)
            .checksum_sha256(wrong)
            .send()
            .await,
    );
    assert_eq!((code.as_str(), status), ("BadDigest", 400));
    assert!(!stack.admin_exists(key).await);

    for (what, put) in [
        (
            "crc32",
            sealed_put(&alice, key, &body)
                .set_checksum_sha256(None)
                .checksum_crc32("AAAAAA=="),
        ),
        (
            "crc32c",
            sealed_put(&alice, key, &body)
                .set_checksum_sha256(None)
                .checksum_crc32_c("AAAAAA=="),
        ),
        (
            "content-md5",
            sealed_put(&alice, key, &body).content_md5(BASE64.encode([0u8; 16])),
        ),
    ] {
        let (code, status) = failure(put.send().await);
        assert_eq!((code.as_str(), status), ("BadDigest", 400), "{what}");
        assert!(!stack.admin_exists(key).await, "{what}");
    }

    // A bad overwrite leaves the earlier object as it was.
    let earlier = data(1000, 2);
    sealed_put(&stack.admin, key, &earlier)
        .send()
        .await
        .unwrap();
    let (code, _) = failure(
        sealed_put(&stack.admin, key, &body)
            .checksum_sha256(sha256_b64(b"no"))
            .send()
            .await,
    );
    assert_eq!(code, "BadDigest");
    assert_eq!(stack.admin_get(key).await, earlier);
    let head = stack.admin_head(key).await;
    assert_eq!(head.checksum_sha256(), Some(sha256_b64(&earlier).as_str()));
}

/// Starts a multipart upload the way the uploader does: SSE-KMS, SHA-256 checksums.
async fn start_upload(c: &Client, key: &str) -> String {
    let created = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(KMS_KEY)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    created.upload_id().unwrap().to_owned()
}

async fn upload_part(c: &Client, key: &str, upload_id: &str, n: i32, body: &[u8]) -> CompletedPart {
    let out = c
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .part_number(n)
        .checksum_sha256(sha256_b64(body))
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.checksum_sha256(),
        Some(sha256_b64(body).as_str()),
        "part {n}"
    );
    CompletedPart::builder()
        .part_number(n)
        .e_tag(out.e_tag().unwrap())
        .checksum_sha256(out.checksum_sha256().unwrap())
        .build()
}

#[tokio::test]
async fn multipart_upload_with_sha256_parts_returns_the_composite_checksum() {
    let stack = Stack::new().await;
    let alice = stack.contractor("alice-01");
    let key = "raw/alice-01/2026/03/14/long-take.wav.age";
    let parts = [data(5 * MIB, 1), data(5 * MIB, 2), data(123_457, 3)];

    let upload_id = start_upload(&alice, key).await;
    let mut completed = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        completed.push(upload_part(&alice, key, &upload_id, i as i32 + 1, part).await);
    }
    // SSE-KMS: as on S3, the ETags are not MD5s of the data (the endpoint computes none), but
    // each is 32 hex digits and they differ.
    let part_e_tags: Vec<String> = completed
        .iter()
        .map(|p| p.e_tag().unwrap().trim_matches('"').to_owned())
        .collect();
    for (e_tag, part) in part_e_tags.iter().zip(&parts) {
        assert!(
            e_tag.len() == 32 && e_tag.bytes().all(|b| b.is_ascii_hexdigit()),
            "{e_tag}"
        );
        assert_ne!(e_tag, &md5_hex(part));
    }
    assert_ne!(part_e_tags[0], part_e_tags[1]);

    let listed = alice
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let seen: Vec<(i32, i64, String, &str)> = listed
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                p.size().unwrap(),
                p.checksum_sha256().unwrap().to_owned(),
                p.e_tag().unwrap().trim_matches('"'),
            )
        })
        .collect();
    let want: Vec<(i32, i64, String, &str)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                i as i32 + 1,
                p.len() as i64,
                sha256_b64(p),
                part_e_tags[i].as_str(),
            )
        })
        .collect();
    assert_eq!(seen, want);
    assert_eq!(
        listed.checksum_algorithm(),
        Some(&ChecksumAlgorithm::Sha256)
    );

    // S3's COMPOSITE checksum, computed independently: SHA-256 over the raw part digests.
    let mut outer = Sha256::new();
    for part in &parts {
        outer.update(Sha256::digest(part));
    }
    let composite = format!("{}-3", BASE64.encode(outer.finalize()));

    let done = complete(&alice, key, &upload_id, completed)
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    assert_eq!(done.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));
    assert_eq!(
        done.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(done.ssekms_key_id(), Some(KMS_KEY));

    let whole: Vec<u8> = parts.concat();
    assert_eq!(stack.admin_get(key).await, whole);
    let head = stack.admin_head(key).await;
    assert_eq!(head.content_length(), Some(whole.len() as i64));
    assert_eq!(head.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(head.checksum_type(), Some(&ChecksumType::Composite));
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(head.ssekms_key_id(), Some(KMS_KEY));
    assert_eq!(head.e_tag(), done.e_tag(), "the ETag Complete answered");
    assert!(
        head.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        head.e_tag()
    );
    assert!(
        stack.multipart_leftovers().is_empty(),
        "{:?}",
        stack.multipart_leftovers()
    );

    // The upload is gone.
    let (code, status) = failure(
        alice
            .list_parts()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await,
    );
    assert_eq!((code.as_str(), status), ("NoSuchUpload", 404));
}

/// A CompleteMultipartUpload request of `parts`, for the caller to add conditions to and send.
fn complete(
    c: &Client,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
) -> CompleteMultipartUploadFluentBuilder {
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
}

fn md5_hex(data: &[u8]) -> String {
    use s3s::crypto::Checksum as _;
    hex::encode(s3s::crypto::Md5::checksum(data))
}

#[tokio::test]
async fn a_multipart_upload_without_sse_kms_has_s3s_md5_etags_and_keeps_its_attributes() {
    let stack = Stack::new().await;
    let key = "exports/plain.bin";
    let parts = [data(5 * MIB, 7), data(5 * MIB + 3, 8), data(1_001, 9)];
    let created = stack
        .admin
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .content_type("application/x-voxseal-test")
        .metadata("origin", "multipart-test")
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap();
    let mut completed = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let out = stack.admin_part(key, upload_id, i as i32 + 1, part).await;
        // Unencrypted objects: the part ETag is the part's MD5, as on S3.
        assert_eq!(out.e_tag().unwrap(), format!("\"{}\"", md5_hex(part)));
        completed.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }

    // A part listed with an ETag it was not acknowledged with is refused.
    let mut wrong = completed.clone();
    wrong[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag(format!("\"{}\"", md5_hex(b"something else")))
        .build();
    let (code, status) = failure(complete(&stack.admin, key, upload_id, wrong).send().await);
    assert_eq!((code.as_str(), status), ("InvalidPart", 400));

    let done = complete(&stack.admin, key, upload_id, completed)
        .send()
        .await
        .unwrap();
    // S3's multipart ETag, computed here independently: MD5 over the binary part MD5s, then -N.
    let mut outer = Vec::new();
    for part in &parts {
        outer.extend(hex::decode(md5_hex(part)).unwrap());
    }
    let want = format!("\"{}-3\"", md5_hex(&outer));
    assert_eq!(done.e_tag(), Some(want.as_str()));

    let got = stack.admin_object(key).await;
    assert_eq!(got.e_tag(), Some(want.as_str()));
    assert_eq!(got.content_type(), Some("application/x-voxseal-test"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("multipart-test")
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        parts.concat()
    );
    assert!(
        stack.multipart_leftovers().is_empty(),
        "{:?}",
        stack.multipart_leftovers()
    );
}

#[tokio::test]
async fn a_damaged_part_record_fails_the_completion_and_stores_nothing() {
    // Every part is recorded with the ETag it was acknowledged with; a record without one is
    // damage (there is no older format to fall back to), so nothing is completed.
    let stack = Stack::new().await;
    let key = "exports/older.bin";
    let part = data(2_000, 4);
    let created = stack
        .admin
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap();
    let out = stack.admin_part(key, upload_id, 1, &part).await;
    let record = stack
        ._dir
        .path()
        .join(".voxseal/uploads")
        .join(upload_id)
        .join("part-1.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert!(meta.as_object_mut().unwrap().remove("e_tag").is_some());
    std::fs::write(&record, serde_json::to_vec(&meta).unwrap()).unwrap();

    let part_one = CompletedPart::builder()
        .part_number(1)
        .e_tag(out.e_tag().unwrap())
        .build();
    let done = complete(&stack.admin, key, upload_id, vec![part_one])
        .send()
        .await;
    let (code, status) = failure(done);
    assert_eq!((code.as_str(), status), ("InternalError", 500));
    let head = stack
        .admin
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await;
    assert!(head.is_err(), "no object was stored");
}

#[tokio::test]
async fn wrong_part_checksums_are_refused() {
    let stack = Stack::new().await;
    let alice = stack.contractor("alice-01");
    let key = "features/alice-01/2026/03/14/s1.safetensors.age";
    let upload_id = start_upload(&alice, key).await;
    let part = data(1000, 9);

    let wrong = alice
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .part_number(1)
        .checksum_sha256(sha256_b64(b"not the part"))
        .body(ByteStream::from(part.clone()))
        .send()
        .await;
    let (code, status) = failure(wrong);
    assert_eq!((code.as_str(), status), ("BadDigest", 400));
    let listed = alice
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    assert!(
        listed.parts().is_empty(),
        "the bad part was not acknowledged: {:?}",
        listed.parts()
    );

    // The right bytes go in; a Complete that claims another checksum for them does not.
    let good = upload_part(&alice, key, &upload_id, 1, &part).await;
    let claimed = CompletedPart::builder()
        .part_number(1)
        .e_tag(good.e_tag().unwrap())
        .checksum_sha256(sha256_b64(b"other"))
        .build();
    let complete_with = |p: CompletedPart| complete(&alice, key, &upload_id, vec![p]).send();
    let (code, status) = failure(complete_with(claimed).await);
    assert_eq!((code.as_str(), status), ("InvalidPart", 400));
    let done = complete_with(good).await.unwrap();
    assert_eq!(
        done.checksum_sha256(),
        Some(format!("{}-1", BASE64.encode(Sha256::digest(Sha256::digest(&part)))).as_str())
    );
    assert_eq!(stack.admin_get(key).await, part);
}

#[tokio::test]
async fn complete_with_if_none_match_on_an_existing_key_is_412() {
    let stack = Stack::new().await;
    let alice = stack.contractor("alice-01");
    let key = "raw/alice-01/2026/03/14/dup.wav.age";
    let first = data(5000, 4);
    sealed_put(&alice, key, &first)
        .if_none_match("*")
        .send()
        .await
        .unwrap();

    let upload_id = start_upload(&alice, key).await;
    let part = upload_part(&alice, key, &upload_id, 1, &data(6000, 5)).await;
    let done = complete(&alice, key, &upload_id, vec![part])
        .if_none_match("*")
        .send()
        .await;
    let (code, status) = failure(done);
    assert_eq!((code.as_str(), status), ("PreconditionFailed", 412));
    assert_eq!(stack.admin_get(key).await, first);

    // The upload is still there to abort, which upload credentials may do.
    alice
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn contractor_can_abort_and_uploads_survive_credential_refresh() {
    let stack = Stack::new().await;
    let key = "raw/alice-01/2026/03/14/s9.wav.age";
    let first_session = stack.contractor("alice-01");
    let upload_id = start_upload(&first_session, key).await;
    let p1 = upload_part(&first_session, key, &upload_id, 1, &data(5 * MIB, 1)).await;

    // New credentials (the broker's refresh) continue the same upload, as on S3.
    let second_session = stack.contractor("alice-01");
    let p2 = upload_part(&second_session, key, &upload_id, 2, &data(10, 2)).await;
    let listed = second_session
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 2);

    // Another contractor cannot touch it (its grant does not cover the key).
    let bob = stack.contractor("bob-02");
    let (code, _) = failure(
        bob.abort_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    // Nor can the upload id be used under a key the contractor owns.
    let (code, status) = failure(
        second_session
            .abort_multipart_upload()
            .bucket(BUCKET)
            .key("raw/alice-01/other")
            .upload_id(&upload_id)
            .send()
            .await,
    );
    assert_eq!((code.as_str(), status), ("NoSuchUpload", 404));

    second_session
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let (code, _) = failure(
        second_session
            .list_parts()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await,
    );
    assert_eq!(code, "NoSuchUpload");
    let late = complete(&second_session, key, &upload_id, vec![p1, p2])
        .send()
        .await;
    assert_eq!(failure(late).0, "NoSuchUpload");
    assert!(!stack.admin_exists(key).await);
}

#[tokio::test]
async fn sdk_default_checksums_work_as_headers_and_as_aws_chunked_trailers() {
    let stack = Stack::new().await;
    let alice = stack.contractor("alice-01");
    let body = data(300_000, 6);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let sse_put = |key: &str| {
        alice
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(KMS_KEY)
    };

    // In-memory body: the SDK computes CRC32 and sends it as a header.
    let in_memory = sse_put("raw/alice-01/mem.wav.age")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let crc32 = in_memory.checksum_crc32().expect("CRC32 echoed").to_owned();

    // Streaming body: aws-chunked with the CRC32 in a trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
    let streamed = ByteStream::from_path(file.path()).await.unwrap();
    let trailer = sse_put("raw/alice-01/file.wav.age")
        .body(streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(trailer.checksum_crc32(), Some(crc32.as_str()));
    assert_eq!(stack.admin_get("raw/alice-01/file.wav.age").await, body);
    let head = stack.admin_head("raw/alice-01/file.wav.age").await;
    assert_eq!(head.checksum_crc32(), Some(crc32.as_str()));

    // Parts with trailers too; the upload's SHA-256 is computed for them regardless.
    let key = "raw/alice-01/parts.wav.age";
    let upload_id = start_upload(&alice, key).await;
    let streamed = ByteStream::from_path(file.path()).await.unwrap();
    let part = alice
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .part_number(1)
        .body(streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(part.checksum_crc32(), Some(crc32.as_str()));
    assert_eq!(part.checksum_sha256(), Some(sha256_b64(&body).as_str()));
    let only = CompletedPart::builder()
        .part_number(1)
        .e_tag(part.e_tag().unwrap())
        .build();
    let done = complete(&alice, key, &upload_id, vec![only])
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.checksum_sha256(),
        Some(format!("{}-1", BASE64.encode(Sha256::digest(Sha256::digest(&body)))).as_str())
    );

    // A client that sends checksums only when an operation requires them also works.
    let creds = stack.mint("alice-01", time::Duration::minutes(15));
    let quiet = client(
        &stack.s3.endpoint_url(),
        Credentials::new(
            &creds.access_key_id,
            creds.secret_access_key.expose_secret(),
            Some(creds.session_token.expose_secret().to_owned()),
            None,
            "test",
        ),
        RequestChecksumCalculation::WhenRequired,
    );
    let put = quiet
        .put_object()
        .bucket(BUCKET)
        .key("raw/alice-01/quiet.wav.age")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(KMS_KEY)
        .body(ByteStream::from_path(file.path()).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(put.checksum_crc32(), None);
    assert_eq!(stack.admin_get("raw/alice-01/quiet.wav.age").await, body);
}

#[tokio::test]
async fn buckets_and_shutdown() {
    let stack = Stack::new().await;
    stack.s3.create_bucket(BUCKET).unwrap();
    stack.s3.create_bucket("second-bucket").unwrap();
    stack.s3.create_bucket("second-bucket").unwrap();
    assert!(matches!(
        stack.s3.create_bucket("Not_A_Bucket"),
        Err(LocalS3Error::InvalidBucketName(_))
    ));
    assert!(matches!(
        stack.s3.create_bucket(".voxseal"),
        Err(LocalS3Error::InvalidBucketName(_))
    ));
    let names: Vec<String> = stack
        .admin
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let addr = stack.s3.addr();
    assert!(stack.s3.endpoint_url().starts_with("http://127.0.0.1:"));
    let started = Instant::now();
    let Stack { s3, _dir, .. } = stack;
    s3.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle keep-alive connections do not hold shutdown up"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Sends a PutObject as the admin the way the SDK streams bodies (aws-chunked,
/// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, CRC32 in a trailer), but with the trailer value given,
/// over a raw connection. Returns the status line and the body.
async fn put_with_crc32_trailer(
    s3: &LocalS3,
    key: &str,
    payload: &[u8],
    crc32_b64: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let now = time::OffsetDateTime::now_utc();
    let amz_date = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    let date = &amz_date[..8];
    let host = s3.addr().to_string();
    let path = format!("/{BUCKET}/{key}");
    let headers = [
        ("host", host.clone()),
        (
            "x-amz-content-sha256",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_owned(),
        ),
        ("x-amz-date", amz_date.clone()),
        ("x-amz-decoded-content-length", payload.len().to_string()),
        ("x-amz-trailer", "x-amz-checksum-crc32".to_owned()),
    ];
    let signed: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical = format!(
        "PUT\n{path}\n\n{canonical_headers}\n{}\nSTREAMING-UNSIGNED-PAYLOAD-TRAILER",
        signed.join(";")
    );
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(&canonical))
    );
    let mut key_bytes = hmac_sha256(format!("AWS4{ADMIN_SECRET}").as_bytes(), date.as_bytes());
    for part in [REGION, "s3", "aws4_request"] {
        key_bytes = hmac_sha256(&key_bytes, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key_bytes, to_sign.as_bytes()));

    let mut body = format!("{:x}\r\n", payload.len()).into_bytes();
    body.extend_from_slice(payload);
    body.extend_from_slice(format!("\r\n0\r\nx-amz-checksum-crc32:{crc32_b64}\r\n\r\n").as_bytes());
    let mut request = format!("PUT {path} HTTP/1.1\r\n");
    for (n, v) in &headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str(&format!(
        "authorization: AWS4-HMAC-SHA256 Credential={ADMIN_KEY}/{scope}, SignedHeaders={}, Signature={signature}\r\n",
        signed.join(";")
    ));
    request.push_str(&format!(
        "content-encoding: aws-chunked\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));

    let mut conn = tokio::net::TcpStream::connect(s3.addr()).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    conn.write_all(&body).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn a_wrong_checksum_trailer_is_bad_digest_and_keeps_the_earlier_object() {
    use s3s::crypto::Checksum as _;
    let stack = Stack::new().await;
    let key = "raw/admin-test/trailer.bin";
    let first = data(70_000, 3);
    let crc = |d: &[u8]| BASE64.encode(s3s::crypto::Crc32::checksum(d));

    let ok = put_with_crc32_trailer(&stack.s3, key, &first, &crc(&first)).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert_eq!(stack.admin_get(key).await, first);

    let second = data(70_000, 4);
    let bad = put_with_crc32_trailer(&stack.s3, key, &second, &crc(&first)).await;
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("<Code>BadDigest</Code>"),
        "{bad}"
    );
    assert_eq!(
        stack.admin_get(key).await,
        first,
        "the earlier object is untouched"
    );

    let fresh = "raw/admin-test/fresh.bin";
    let bad = put_with_crc32_trailer(&stack.s3, fresh, &second, "AAAAAA==").await;
    assert!(bad.contains("<Code>BadDigest</Code>"), "{bad}");
    assert!(!stack.admin_exists(fresh).await);
}

/// The AWS CLI of the test venv (`scripts/setup.sh --test`), next to `VOXSEAL_PYTHON`.
fn aws_cli() -> Option<std::path::PathBuf> {
    let python = std::env::var_os("VOXSEAL_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| voxseal_testkit::repo_root().join(".venv/bin/python"));
    let aws = python.with_file_name("aws");
    if aws.is_file() {
        return Some(aws);
    }
    assert!(
        std::env::var("VOXSEAL_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "the AWS CLI is required: run scripts/setup.sh --test"
    );
    eprintln!(
        "skipped: no AWS CLI at {} (run scripts/setup.sh --test)",
        aws.display()
    );
    None
}

/// Runs `aws --endpoint-url <endpoint> <args>` with the given keys and nothing from ~/.aws.
async fn run_aws(
    aws: &std::path::Path,
    endpoint: &str,
    keys: (&str, &str, Option<&str>),
    args: &[&str],
) -> (bool, String) {
    let mut cmd = std::process::Command::new(aws);
    cmd.arg("--endpoint-url")
        .arg(endpoint)
        .arg("--output")
        .arg("json")
        .args(args);
    cmd.env("AWS_ACCESS_KEY_ID", keys.0)
        .env("AWS_SECRET_ACCESS_KEY", keys.1)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE");
    match keys.2 {
        Some(token) => cmd.env("AWS_SESSION_TOKEN", token),
        None => cmd.env_remove("AWS_SESSION_TOKEN"),
    };
    // The endpoint runs on this test's runtime: wait for the CLI off it.
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn the_aws_cli_gets_the_same_answers() {
    let Some(aws) = aws_cli() else { return };
    let stack = Stack::new().await;
    let endpoint = stack.s3.endpoint_url();
    let creds = stack.mint("alice-01", time::Duration::minutes(15));
    let contractor = (
        creds.access_key_id.as_str(),
        creds.secret_access_key.expose_secret(),
        Some(creds.session_token.expose_secret()),
    );
    let admin = (ADMIN_KEY, ADMIN_SECRET, None);
    let key = "raw/alice-01/2026/03/14/cli.wav.age";
    let body = data(50_000, 8);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let path = file.path().to_str().unwrap();

    let put = [
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--body",
        path,
        "--server-side-encryption",
        "aws:kms",
        "--ssekms-key-id",
        KMS_KEY,
        "--checksum-algorithm",
        "SHA256",
    ];
    let (ok, out) = run_aws(&aws, &endpoint, contractor, &put).await;
    assert!(ok, "{out}");
    let put: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(put["ServerSideEncryption"], "aws:kms", "{out}");
    assert_eq!(put["SSEKMSKeyId"], KMS_KEY, "{out}");
    assert_eq!(put["ChecksumSHA256"], sha256_b64(&body), "{out}");

    let head = [
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--checksum-mode",
        "ENABLED",
    ];
    let (ok, out) = run_aws(&aws, &endpoint, admin, &head).await;
    assert!(ok, "{out}");
    let head_json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(head_json["ContentLength"], body.len(), "{out}");
    assert_eq!(head_json["ServerSideEncryption"], "aws:kms", "{out}");
    assert_eq!(head_json["SSEKMSKeyId"], KMS_KEY, "{out}");
    assert_eq!(head_json["ChecksumSHA256"], sha256_b64(&body), "{out}");

    let (ok, out) = run_aws(&aws, &endpoint, contractor, &head).await;
    assert!(
        !ok && out.contains("403"),
        "upload credentials cannot HEAD: {out}"
    );
    let wrong_key = [
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--server-side-encryption",
        "aws:kms",
        "--ssekms-key-id",
        OTHER_KMS_KEY,
    ];
    let (ok, out) = run_aws(&aws, &endpoint, contractor, &wrong_key).await;
    assert!(!ok && out.contains("AccessDenied"), "{out}");
}
