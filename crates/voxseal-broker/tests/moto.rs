//! The broker binary with the STS issuer against moto (IAM enforcement on).
//!
//! moto ignores AssumeRole session policies (NOTES.md), so the role's *identity* policy here is
//! exactly the statements of `session_policy(..)` for alice-01: moto's IAM engine then enforces
//! the generated policy's actions and resources on the credentials the broker hands out. (moto does
//! not evaluate Conditions, so the SSE-KMS conditions are checked by the policy's unit tests, and
//! the one conditional Deny, which moto would apply unconditionally, is left out here.)
//!
//! Skipped when the test venv is missing, unless `VOXSEAL_REQUIRE_TOOLS=1`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde_json::{Value, json};
use voxseal_broker::registry::{DEFAULT_CODE_TTL, Registry};
use voxseal_cloud::credentials::SessionCredentials;
use voxseal_cloud::policy::{PolicyInput, session_policy};
use voxseal_core::project::ids::ContractorId;
use voxseal_core::store::audit::AuditLog;
use voxseal_testkit::{AwsKeys, MotoServer, require_tool};

const BUCKET: &str = "voxseal-moto";
const ROLE: &str = "voxseal-contractor";
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";

fn role_arn() -> String {
    format!("arn:aws:iam::{}:role/{ROLE}", MotoServer::ACCOUNT_ID)
}

fn cid(s: &str) -> ContractorId {
    s.parse().unwrap()
}

/// moto with IAM on, plus the AWS CLI; `None` (skip) when the venv is missing.
fn moto() -> Option<MotoServer> {
    require_tool("aws")?;
    MotoServer::try_start()
}

/// As the admin: the bucket, and a role the admin may assume whose identity policy is exactly the
/// session policy the broker generates for alice-01.
fn set_up_bucket_and_role(moto: &MotoServer) -> String {
    moto.aws_ok(&["s3api", "create-bucket", "--bucket", BUCKET]);
    moto.create_assumable_role(ROLE);
    let alice = cid("alice-01");
    let policy = session_policy(&PolicyInput {
        bucket: BUCKET,
        kms_key_arn: KMS_KEY,
        region: MotoServer::REGION,
        contractor: &alice,
    })
    .unwrap();
    assert!(!policy.contains(' '));
    // moto ignores Conditions: a conditional Deny would deny every PutObject there. Leave out
    // exactly that statement (its meaning is tested in voxseal-cloud's policy and boundary tests).
    let mut doc: Value = serde_json::from_str(&policy).unwrap();
    let statements = doc["Statement"].as_array_mut().unwrap();
    let before = statements.len();
    statements.retain(|s| !(s["Effect"] == "Deny" && s.get("Condition").is_some()));
    assert_eq!(
        before - statements.len(),
        1,
        "one conditional Deny: {policy}"
    );
    // The unconditional Deny (keys with `.`, `..` or empty segments) stays: moto applies it.
    assert!(
        statements
            .iter()
            .all(|s| s["Effect"] == "Allow" || s["Sid"] == "NoDotOrEmptyKeySegments"),
        "{policy}"
    );
    // moto turns a resource pattern into a regex by replacing `*` with `.*` and leaves `.`
    // unescaped (any character), where IAM means a literal dot: escape the dots of the Deny so
    // that moto matches what IAM matches.
    for s in doc["Statement"].as_array_mut().unwrap() {
        if s["Sid"] == "NoDotOrEmptyKeySegments" {
            for r in s["Resource"].as_array_mut().unwrap() {
                *r = Value::from(r.as_str().unwrap().replace('.', "\\."));
            }
        }
    }
    let policy = doc.to_string();
    moto.aws_ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        ROLE,
        "--policy-name",
        "voxseal-session",
        "--policy-document",
        &policy,
    ]);
    policy
}

/// The `voxseal-broker` binary, killed on drop; its JSON log lines are collected.
struct Broker {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    registry: std::path::PathBuf,
    audit: std::path::PathBuf,
}

impl Broker {
    fn start(moto: &MotoServer, creds: &AwsKeys) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "bind = \"127.0.0.1:0\"\nregistry = \"registry.toml\"\naudit_log = \"broker-audit.log\"\n\
                 bucket = \"{BUCKET}\"\nregion = \"{}\"\nkms_key_arn = \"{KMS_KEY}\"\nrole_arn = \"{}\"\n\
                 issuer = \"sts\"\nduration_secs = 900\nsts_endpoint = \"{}\"\n",
                MotoServer::REGION,
                role_arn(),
                moto.endpoint_url()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_voxseal-broker"));
        cmd.arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in creds.env(MotoServer::REGION) {
            cmd.env(k, v);
        }
        cmd.env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("VOXSEAL_BROKER_LOG", "debug");
        for (k, _) in std::env::vars() {
            if k.starts_with("VOXSEAL_BROKER_") && k != "VOXSEAL_BROKER_LOG" {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("starting voxseal-broker");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (log, tx) = (log.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["fields"]["message"] == "listening"
                    {
                        let addr = v["fields"]["addr"].as_str().unwrap_or_default();
                        let _ = tx.send(addr.to_owned());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "the broker did not start:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        Broker {
            child,
            url: format!("http://{addr}"),
            log,
            registry: dir.path().join("registry.toml"),
            audit: dir.path().join("broker-audit.log"),
            _dir: dir,
        }
    }

    fn add(&self, id: &str) -> String {
        let mut reg = Registry::load(&self.registry).unwrap();
        let code = reg.add(cid(id), DEFAULT_CODE_TTL).unwrap();
        reg.save().unwrap();
        code.expose_secret().to_owned()
    }

    fn revoke(&self, id: &str) {
        let mut reg = Registry::load(&self.registry).unwrap();
        reg.revoke(&cid(id)).unwrap();
        reg.save().unwrap();
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut req = client.post(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the broker answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.expect("JSON body"))
}

async fn enroll(broker: &Broker, code: &str) -> String {
    let (status, _, body) = post(
        &format!("{}/v1/enroll", broker.url),
        None,
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(status, 200, "{body}\n{}", broker.log_text());
    body["token"].as_str().unwrap().to_owned()
}

fn s3_client(moto: &MotoServer, creds: &SessionCredentials) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(creds.region.clone()))
        .endpoint_url(moto.endpoint_url())
        .force_path_style(true)
        .credentials_provider(creds.to_aws(creds.expiration))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The request was refused by IAM: 403, and `AccessDenied` where there is a body to say so.
#[track_caller]
fn assert_denied<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    r: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    has_body: bool,
) {
    let err = match r {
        Ok(v) => panic!("{what} should be denied, got {v:?}"),
        Err(e) => e,
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(403), "{what}: {err:?}");
    if has_body {
        assert_eq!(err.code(), Some("AccessDenied"), "{what}: {err:?}");
    }
}

async fn put(s3: &aws_sdk_s3::Client, key: &str) -> Result<(), String> {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from_static(b"ciphertext"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(KMS_KEY)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_credentials_write_only_to_own_prefixes() {
    let Some(moto) = moto() else { return };
    let started = Instant::now();
    set_up_bucket_and_role(&moto);
    let broker = Broker::start(&moto, moto.admin_credentials());
    let (status, _, health) = {
        let r = reqwest::get(format!("{}/healthz", broker.url))
            .await
            .unwrap();
        (r.status().as_u16(), (), r.json::<Value>().await.unwrap())
    };
    assert_eq!((status, health), (200, json!({"status": "ok"})));

    let token = enroll(&broker, &broker.add("alice-01")).await;
    let (status, headers, body) =
        post(&format!("{}/v1/sessions", broker.url), Some(&token), None).await;
    assert_eq!(status, 200, "{body}\n{}", broker.log_text());
    assert_eq!(headers["cache-control"], "no-store");
    let creds: SessionCredentials = serde_json::from_value(body).unwrap();
    assert_eq!(creds.bucket, BUCKET);
    assert_eq!(
        creds.prefixes,
        ["raw/alice-01/", "features/alice-01/", "manifests/alice-01/"]
    );
    assert_eq!(creds.kms_key_arn, KMS_KEY);
    let lifetime = creds.expiration - time::OffsetDateTime::now_utc();
    assert!(
        lifetime > time::Duration::seconds(800) && lifetime <= time::Duration::seconds(901),
        "{lifetime}"
    );

    let s3 = s3_client(&moto, &creds);
    for key in [
        "raw/alice-01/x",
        "features/alice-01/x",
        "manifests/alice-01/x",
    ] {
        put(&s3, key)
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e}"));
    }
    for key in [
        "raw/bob-02/x",
        "other-prefix/x",
        "raw/alice-01x",
        "features/x",
        // Inside alice's prefixes as strings, but not as paths.
        "raw/alice-01/../bob-02/x",
        "features/alice-01/./x",
        "manifests/alice-01//x",
        "raw/alice-01/x/..",
        "raw/alice-01/x/",
    ] {
        let r = s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from_static(b"ciphertext"))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(KMS_KEY)
            .send()
            .await;
        assert_denied(&format!("PutObject {key}"), r, true);
    }
    let key = "raw/alice-01/x";
    assert_denied(
        "GetObject",
        s3.get_object().bucket(BUCKET).key(key).send().await,
        true,
    );
    assert_denied(
        "HeadObject",
        s3.head_object().bucket(BUCKET).key(key).send().await,
        false,
    );
    assert_denied(
        "ListObjectsV2",
        s3.list_objects_v2()
            .bucket(BUCKET)
            .prefix("raw/alice-01/")
            .send()
            .await,
        true,
    );
    assert_denied(
        "DeleteObject",
        s3.delete_object().bucket(BUCKET).key(key).send().await,
        true,
    );
    // The objects are there (checked as the admin, with the CLI).
    let head = moto.aws_ok(&["s3api", "head-object", "--bucket", BUCKET, "--key", key]);
    assert_eq!(head["ServerSideEncryption"], "aws:kms");

    // The audit log names the STS request.
    let entries = AuditLog::new(&broker.audit).entries().unwrap();
    let issued = entries
        .iter()
        .find(|e| e.event == "broker.session.issued")
        .expect("issued line");
    assert_eq!(issued.details["contractor"], "alice-01");
    assert_eq!(issued.details["issuer"], "sts");
    assert_eq!(issued.details["source_ip"], "127.0.0.1");
    assert_eq!(issued.details["access_key_id"], creds.access_key_id);
    let request_id = issued.details["sts_request_id"]
        .as_str()
        .expect("STS request id");
    assert!(request_id.len() >= 16, "{request_id}");
    assert!(
        broker.log_text().contains(request_id),
        "the server log has it too"
    );
    let audit_text = std::fs::read_to_string(&broker.audit).unwrap();
    use secrecy::ExposeSecret;
    for secret in [
        token.as_str(),
        creds.secret_access_key.expose_secret(),
        creds.session_token.expose_secret(),
    ] {
        assert!(!audit_text.contains(secret) && !broker.log_text().contains(secret));
    }

    // SIGTERM stops it gracefully.
    let mut broker = broker;
    let pid = broker.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = broker.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(100)); // let the reader threads catch up
    assert!(
        broker.log_text().contains("\"stopped\""),
        "{}",
        broker.log_text()
    );
    eprintln!("moto STS test: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_unknown_and_upstream_failures() {
    let Some(moto) = moto() else { return };
    set_up_bucket_and_role(&moto);
    let broker = Broker::start(&moto, moto.admin_credentials());
    let sessions = format!("{}/v1/sessions", broker.url);

    let alice = enroll(&broker, &broker.add("alice-01")).await;
    let bob = enroll(&broker, &broker.add("bob-02")).await;
    assert_eq!(post(&sessions, Some(&bob), None).await.0, 200);
    broker.revoke("bob-02");
    let (status, _, body) = post(&sessions, Some(&bob), None).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (403, Some("revoked")),
        "{body}"
    );
    let (status, headers, body) = post(
        &sessions,
        Some(&format!("vxt_000000000000_{}", "A".repeat(43))),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, body) = post(&sessions, None, None).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert_eq!(
        post(&sessions, Some(&alice), None).await.0,
        200,
        "others are unaffected"
    );

    // A broker whose own AWS credentials moto does not know: STS refuses, the client sees 502.
    let stranger = AwsKeys {
        access_key_id: "AKIAUNKNOWN000000000".into(),
        secret_access_key: "not-a-real-secret".into(),
        session_token: None,
    };
    let bad = Broker::start(&moto, &stranger);
    let carol = enroll(&bad, &bad.add("carol-03")).await;
    let (status, _, body) = post(&format!("{}/v1/sessions", bad.url), Some(&carol), None).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (502, Some("upstream")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("InvalidClientTokenId") && !message.contains("AKIA"),
        "{message}"
    );
    let last = AuditLog::new(&bad.audit).entries().unwrap().pop().unwrap();
    assert_eq!(last.event, "broker.session.refused");
    assert_eq!(last.details["outcome"], "upstream");
    assert_eq!(last.details["contractor"], "carol-03");
    assert!(
        bad.log_text().contains("credential issuance failed"),
        "{}",
        bad.log_text()
    );
}
