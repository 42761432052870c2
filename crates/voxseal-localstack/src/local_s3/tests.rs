use super::auth::*;
use super::checksums::*;
use crate::grants::{Grant, GrantStore};
use hyper::HeaderMap;
use s3s::S3ErrorCode;
use s3s::dto::ChecksumAlgorithm;
use s3s::path::S3Path;
use secrecy::ExposeSecret;
use time::OffsetDateTime;

fn contractor_grant(store: &GrantStore) -> (Grant, String) {
    let id = "alice-01".parse().unwrap();
    let creds = store.mint(
        &id,
        "b-1",
        "us-east-1",
        "arn:aws:kms:us-east-1:123456789012:key/k",
        time::Duration::minutes(5),
    );
    (
        store.get(&creds.access_key_id).unwrap(),
        creds.session_token.expose_secret().to_owned(),
    )
}

#[test]
fn keys_that_alias_other_paths_are_refused() {
    for ok in [
        "a",
        "raw/alice-01/x.wav.age",
        "raw/alice-01/",
        "a.b/..c/d..",
        "raw/..x",
    ] {
        assert!(key_is_plain(ok), "{ok}");
    }
    for bad in [
        "",
        "/a",
        "a//b",
        "raw/alice-01/../bob/x",
        "./a",
        "a/.",
        "a/..",
        "a//",
    ] {
        assert!(!key_is_plain(bad), "{bad}");
    }
}

#[test]
fn an_announced_algorithm_needs_a_value() {
    let sha = ChecksumAlgorithm::from_static(ChecksumAlgorithm::SHA256);
    let err = Expectations::new(Checksums::default(), None, Some(&sha), &HeaderMap::new())
        .err()
        .unwrap();
    assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
    let mut trailer = HeaderMap::new();
    trailer.insert("x-amz-trailer", "x-amz-checksum-sha256".parse().unwrap());
    let e = Expectations::new(Checksums::default(), None, Some(&sha), &trailer).unwrap();
    assert_eq!(e.compute, [ChecksumKind::Sha256]);
}

#[test]
fn presigned_urls_carry_the_token_in_the_query() {
    let store = GrantStore::new();
    let (grant, token) = contractor_grant(&store);
    let encoded: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Security-Token={encoded}&X-Amz-Signature=00"
    );
    let got = session_token(&HeaderMap::new(), Some(&query));
    assert_eq!(got.as_deref(), Some(token.as_str()));
    let mut headers = HeaderMap::new();
    headers.insert(SSE_HEADER, "aws:kms".parse().unwrap());
    headers.insert(
        SSE_KMS_KEY_HEADER,
        "arn:aws:kms:us-east-1:123456789012:key/k".parse().unwrap(),
    );
    let path = S3Path::object("b-1", "raw/alice-01/x");
    let now = OffsetDateTime::now_utc();
    assert!(authorize(&grant, now, "PutObject", &path, &headers, got.as_deref()).is_ok());
    let late = now + time::Duration::minutes(6);
    let err = authorize(&grant, late, "PutObject", &path, &headers, got.as_deref()).unwrap_err();
    assert_eq!(err.code(), &S3ErrorCode::ExpiredToken);
}

#[test]
fn a_session_token_in_the_query_is_form_decoded() {
    let query = "X-Amz-Algorithm=AWS4&x-amz-security-token=abc%2Fdef%2B1+2&X-Amz-Date=1";
    assert_eq!(
        session_token(&HeaderMap::new(), Some(query)).as_deref(),
        Some("abc/def+1 2")
    );
    assert_eq!(session_token(&HeaderMap::new(), Some("a=b")), None);
}
