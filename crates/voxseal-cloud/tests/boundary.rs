//! The contractor-upload role's permissions boundary against the session policies Voxseal
//! generates.
//!
//! The boundary's single source is `deploy/aws/upload-boundary.json` (placeholders
//! `${BucketName}`, `${KmsKeyArn}`, `${AWS::Partition}`, `${AWS::Region}`), which
//! `deploy/aws/voxseal.yaml` embeds verbatim in an `Fn::Sub`. These tests check that:
//! - the template still embeds exactly that document, in the boundary resource;
//! - every statement of every session policy [`session_policy`] builds (several contractors, the
//!   longest valid id included, several buckets, regions and keys) is inside the boundary: each
//!   action matched by a boundary action, each resource pattern contained in a boundary resource
//!   pattern (IAM `*`/`?` semantics), and each boundary condition implied by the session
//!   statement's own conditions;
//! - the boundary allows no read, list or delete action, nor anything else than the five
//!   upload actions;
//! - the checker itself rejects policies that are broader than the boundary.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use voxseal_cloud::policy::{PolicyInput, session_policy};
use voxseal_core::project::ids::ContractorId;

const PLACEHOLDERS: [&str; 4] = [
    "${AWS::Partition}",
    "${AWS::Region}",
    "${BucketName}",
    "${KmsKeyArn}",
];

/// The five actions a contractor session needs, and the only ones the boundary may allow.
const UPLOAD_ACTIONS: [&str; 5] = [
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "kms:GenerateDataKey",
    "kms:Decrypt",
];

/// Actions the boundary must never allow, whatever wildcard is written in it.
const FORBIDDEN_ACTIONS: [&str; 30] = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAttributes",
    "s3:GetObjectAcl",
    "s3:GetObjectTagging",
    "s3:RestoreObject",
    "s3:SelectObjectContent",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListAllMyBuckets",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:PutObjectAcl",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:BypassGovernanceRetention",
    "s3:ReplicateObject",
    "kms:Encrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:CreateGrant",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ScheduleKeyDeletion",
    "kms:PutKeyPolicy",
    "iam:PassRole",
];

const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn deploy_aws() -> PathBuf {
    voxseal_testkit::repo_root().join("deploy/aws")
}

fn read(name: &str) -> String {
    let path = deploy_aws().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// What `Fn::Sub` fills in when the stack is created.
#[derive(Debug, Clone, Copy)]
struct Stack<'a> {
    partition: &'a str,
    region: &'a str,
    bucket: &'a str,
    kms_key_arn: &'a str,
}

impl Stack<'_> {
    /// The boundary as CloudFormation would create it in this stack.
    fn boundary(&self) -> Value {
        let text = read("upload-boundary.json")
            .replace("${AWS::Partition}", self.partition)
            .replace("${AWS::Region}", self.region)
            .replace("${BucketName}", self.bucket)
            .replace("${KmsKeyArn}", self.kms_key_arn);
        assert!(!text.contains("${"), "unknown placeholder left: {text}");
        serde_json::from_str(&text).expect("upload-boundary.json is JSON")
    }

    fn session_policy(&self, contractor: &ContractorId) -> Value {
        let text = session_policy(&PolicyInput {
            bucket: self.bucket,
            kms_key_arn: self.kms_key_arn,
            region: self.region,
            contractor,
        })
        .unwrap_or_else(|e| panic!("session policy for {contractor:?} in {self:?}: {e}"));
        serde_json::from_str(&text).unwrap()
    }
}

fn stacks() -> Vec<Stack<'static>> {
    let long_bucket: &'static str = "b".repeat(63).leak();
    vec![
        Stack {
            partition: "aws",
            region: "eu-west-1",
            bucket: "voxseal-prod",
            kms_key_arn: KEY,
        },
        // The template's default name: <prefix>-data-<account>-<region>.
        Stack {
            partition: "aws",
            region: "ap-southeast-3",
            bucket: "voxseal-data-123456789012-ap-southeast-3",
            kms_key_arn: "arn:aws:kms:ap-southeast-3:123456789012:key/mrk-0123456789abcdef0123456789abcdef",
        },
        Stack {
            partition: "aws",
            region: "us-east-1",
            bucket: long_bucket,
            kms_key_arn: "arn:aws:kms:us-east-1:000000000000:key/0",
        },
    ]
}

fn contractors() -> Vec<ContractorId> {
    let longest = "a".repeat(ContractorId::MAX_LEN);
    let longest_dashes = format!("z{}", "-".repeat(ContractorId::MAX_LEN - 1));
    [
        "abc",
        "alice-01",
        "bob-7",
        "0--",
        "raw",
        "features",
        longest.as_str(),
        longest_dashes.as_str(),
    ]
    .iter()
    .map(|id| id.parse().unwrap_or_else(|e| panic!("{id}: {e:?}")))
    .collect()
}

// --- a small model of an IAM policy -------------------------------------------------------------

/// One condition test: operator, key (lowercased: IAM condition keys are case-insensitive) and
/// the values it accepts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cond {
    op: String,
    key: String,
    values: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Stmt {
    sid: String,
    effect: String,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Cond>,
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => panic!("{what}: not a string: {other}"),
            })
            .collect(),
        other => panic!("{what}: expected a string or an array of strings, got {other}"),
    }
}

fn statements(policy: &Value) -> Vec<Stmt> {
    assert_eq!(policy["Version"], "2012-10-17", "policy version");
    let list = match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        other => panic!("Statement: {other}"),
    };
    list.iter()
        .map(|s| {
            let obj = s.as_object().expect("statement is an object");
            for k in obj.keys() {
                assert!(
                    ["Sid", "Effect", "Action", "Resource", "Condition"].contains(&k.as_str()),
                    "statement uses {k}, which this check does not model (NotAction, NotResource \
                     and Principal invert or widen what a statement covers): {s}"
                );
            }
            let mut conditions = Vec::new();
            if let Some(c) = obj.get("Condition") {
                for (op, tests) in c.as_object().expect("Condition is an object") {
                    for (key, values) in tests.as_object().expect("condition operator maps keys") {
                        let values = match values {
                            Value::Bool(b) => vec![b.to_string()],
                            v => strings(v, key),
                        };
                        conditions.push(Cond {
                            op: op.clone(),
                            key: key.to_ascii_lowercase(),
                            values: values.into_iter().collect(),
                        });
                    }
                }
            }
            Stmt {
                sid: obj
                    .get("Sid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                effect: obj["Effect"].as_str().expect("Effect").to_owned(),
                actions: strings(&obj["Action"], "Action"),
                resources: strings(&obj["Resource"], "Resource"),
                conditions,
            }
        })
        .collect()
}

/// Whether every string matched by the IAM pattern `inner` is also matched by `outer`, where
/// `*` matches any run of characters (`/` and `:` included) and `?` exactly one. Sound (a `true`
/// is always right): each `*` of `inner` must fall inside a `*` of `outer`, each `?` of `inner`
/// on a `?` or `*` of `outer`, each literal on the same literal or a wildcard. For a plain
/// string `inner` this is ordinary IAM wildcard matching.
fn pattern_covers(outer: &str, inner: &str) -> bool {
    let o: Vec<char> = outer.chars().collect();
    let i: Vec<char> = inner.chars().collect();
    // ok[p][q]: outer[p..] covers inner[q..].
    let mut ok = vec![vec![false; i.len() + 1]; o.len() + 1];
    ok[o.len()][i.len()] = true;
    for p in (0..o.len()).rev() {
        for q in (0..=i.len()).rev() {
            ok[p][q] = match o[p] {
                '*' => ok[p + 1][q] || (q < i.len() && ok[p][q + 1]),
                _ if q == i.len() => false,
                '?' => i[q] != '*' && ok[p + 1][q + 1],
                c => i[q] == c && ok[p + 1][q + 1],
            };
        }
    }
    ok[0][0]
}

/// IAM action names are case-insensitive.
fn action_covers(outer: &str, inner: &str) -> bool {
    pattern_covers(&outer.to_ascii_lowercase(), &inner.to_ascii_lowercase())
}

/// Whether the session statement's conditions imply all of the boundary statement's: each
/// boundary test must appear in the session statement with the same operator and key and a
/// subset of its values (a sufficient condition for the string-equality operators used here).
fn conditions_implied(boundary: &Stmt, session: &Stmt) -> Result<(), String> {
    for b in &boundary.conditions {
        let found = session
            .conditions
            .iter()
            .any(|s| s.op == b.op && s.key == b.key && s.values.is_subset(&b.values));
        if !found {
            return Err(format!(
                "boundary statement {:?} requires {} {} in {:?}; the session statement has {:?}",
                boundary.sid, b.op, b.key, b.values, session.conditions
            ));
        }
    }
    Ok(())
}

/// Every (action, resource) of every statement of `session` must be covered by one Allow
/// statement of `boundary` whose conditions the session statement implies. Returns every gap.
fn uncovered(boundary: &Value, session: &Value) -> Vec<String> {
    let bounds = statements(boundary);
    for b in &bounds {
        assert_eq!(
            b.effect, "Allow",
            "the boundary has a Deny ({:?}): this check only models allow-only boundaries; \
             decide what it means for uploads and extend the test",
            b.sid
        );
    }
    let mut gaps = Vec::new();
    // A Deny in the session policy only narrows what it allows; the boundary check is about
    // what the Allows can reach.
    for s in statements(session)
        .into_iter()
        .filter(|s| s.effect == "Allow")
    {
        for a in &s.actions {
            for r in &s.resources {
                let mut why = Vec::new();
                let covered = bounds.iter().any(|b| {
                    if !b.actions.iter().any(|ba| action_covers(ba, a)) {
                        return false;
                    }
                    if !b.resources.iter().any(|br| pattern_covers(br, r)) {
                        return false;
                    }
                    match conditions_implied(b, &s) {
                        Ok(()) => true,
                        Err(e) => {
                            why.push(e);
                            false
                        }
                    }
                });
                if !covered {
                    gaps.push(format!(
                        "{:?}: {a} on {r} is not inside the boundary {why:?}",
                        s.sid
                    ));
                }
            }
        }
    }
    gaps
}

// --- the tests ----------------------------------------------------------------------------------

fn strip_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn template_embeds_the_boundary_document_verbatim() {
    let json = read("upload-boundary.json");
    let yaml = read("voxseal.yaml");

    // Only the placeholders the template's Fn::Sub fills in.
    let mut rest = json.as_str();
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').expect("unclosed ${") + start + 1;
        assert!(
            PLACEHOLDERS.contains(&&rest[start..end]),
            "unknown placeholder {} in upload-boundary.json",
            &rest[start..end]
        );
        rest = &rest[end..];
    }

    // Whitespace-insensitive comparison is exact only if no JSON string holds whitespace.
    fn no_space_in_strings(v: &Value) {
        match v {
            Value::String(s) => assert!(!s.contains(char::is_whitespace), "{s:?}"),
            Value::Array(a) => a.iter().for_each(no_space_in_strings),
            Value::Object(o) => o.iter().for_each(|(k, v)| {
                assert!(!k.contains(char::is_whitespace), "{k:?}");
                no_space_in_strings(v);
            }),
            _ => {}
        }
    }
    no_space_in_strings(&serde_json::from_str(&json).expect("upload-boundary.json is JSON"));

    // The document sits in UploadBoundaryPolicy's Fn::Sub, with the variables it expects.
    let start = yaml
        .find("\n  UploadBoundaryPolicy:\n")
        .expect("voxseal.yaml has the UploadBoundaryPolicy resource");
    let len = yaml[start + 1..]
        .find("\n  ContractorUploadRole:\n")
        .expect("ContractorUploadRole follows UploadBoundaryPolicy");
    let section = &yaml[start..start + 1 + len];
    assert!(
        section.contains("Type: AWS::IAM::ManagedPolicy"),
        "{section}"
    );
    assert!(section.contains("PolicyDocument: !Sub"), "{section}");
    assert!(
        section.contains("- BucketName: !Ref DataBucket"),
        "{section}"
    );
    assert!(
        section.contains("KmsKeyArn: !GetAtt DataKey.Arn"),
        "{section}"
    );
    let want = strip_whitespace(&json);
    assert!(
        strip_whitespace(section).contains(&want),
        "deploy/aws/voxseal.yaml's UploadBoundaryPolicy no longer embeds \
         deploy/aws/upload-boundary.json verbatim: copy the file's text into the Fn::Sub block"
    );
    assert_eq!(
        strip_whitespace(&yaml).matches(&want).count(),
        1,
        "the document appears once"
    );

    // And the upload role uses it as its boundary (and as its only identity policy).
    let role = &yaml[start + 1 + len..];
    let role = &role[..role.find("\n\n").unwrap_or(role.len())];
    assert!(
        role.contains("PermissionsBoundary: !Ref UploadBoundaryPolicy"),
        "{role}"
    );
    assert!(
        role.contains("ManagedPolicyArns: [!Ref UploadBoundaryPolicy]"),
        "{role}"
    );
    assert!(!role.contains("Policies:"), "no inline policies: {role}");
}

#[test]
fn every_session_policy_is_inside_the_boundary() {
    let mut checked = 0;
    for stack in stacks() {
        let boundary = stack.boundary();
        for c in contractors() {
            let session = stack.session_policy(&c);
            let gaps = uncovered(&boundary, &session);
            assert!(gaps.is_empty(), "{stack:?} {c:?}:\n{}", gaps.join("\n"));
            checked += 1;
        }
    }
    assert_eq!(checked, stacks().len() * contractors().len());
}

#[test]
fn the_boundary_allows_only_the_upload_actions() {
    let stack = stacks()[0];
    let bounds = statements(&stack.boundary());
    let mut actions = BTreeSet::new();
    for b in &bounds {
        for a in &b.actions {
            assert!(
                !a.contains('*') && !a.contains('?'),
                "no wildcard actions: {a}"
            );
            for f in FORBIDDEN_ACTIONS {
                assert!(!action_covers(a, f), "{a} would allow {f}");
            }
            actions.insert(a.as_str());
        }
        for r in &b.resources {
            assert!(r != "*", "statement {:?} allows every resource", b.sid);
        }
    }
    assert_eq!(actions, UPLOAD_ACTIONS.into_iter().collect::<BTreeSet<_>>());

    // S3: object-level ARNs under the three upload prefixes of this bucket only (so no
    // bucket-level action such as a listing can match, and no other prefix).
    let s3: Vec<&Stmt> = bounds
        .iter()
        .filter(|b| b.actions.iter().any(|a| a.starts_with("s3:")))
        .collect();
    assert_eq!(s3.len(), 1);
    assert!(s3[0].actions.iter().all(|a| a.starts_with("s3:")));
    let prefixes: BTreeSet<String> = s3[0]
        .resources
        .iter()
        .map(|r| {
            r.strip_prefix(&format!("arn:aws:s3:::{}/", stack.bucket))
                .unwrap_or_else(|| panic!("{r} is not an object ARN in {}", stack.bucket))
                .to_owned()
        })
        .collect();
    let want: BTreeSet<String> = ["raw/*", "features/*", "manifests/*"]
        .map(String::from)
        .into();
    assert_eq!(prefixes, want);
    for f in [
        format!("arn:aws:s3:::{}", stack.bucket),
        format!("arn:aws:s3:::{}/other/x", stack.bucket),
        format!("arn:aws:s3:::{}-logs/raw/x", stack.bucket),
        "arn:aws:s3:::other/raw/x".to_owned(),
    ] {
        assert!(
            !s3[0].resources.iter().any(|r| pattern_covers(r, &f)),
            "{f} is allowed"
        );
    }
    let sse = |key: &str| {
        s3[0]
            .conditions
            .iter()
            .find(|c| c.op == "StringEqualsIfExists" && c.key == key)
            .map(|c| c.values.iter().cloned().collect::<Vec<_>>())
    };
    assert_eq!(
        sse("s3:x-amz-server-side-encryption"),
        Some(vec!["aws:kms".to_owned()])
    );
    assert_eq!(
        sse("s3:x-amz-server-side-encryption-aws-kms-key-id"),
        Some(vec![stack.kms_key_arn.to_owned()])
    );

    // KMS: exactly the project key, only through S3 in the stack's region.
    let kms: Vec<&Stmt> = bounds
        .iter()
        .filter(|b| b.actions.iter().any(|a| a.starts_with("kms:")))
        .collect();
    assert_eq!(kms.len(), 1);
    assert!(kms[0].actions.iter().all(|a| a.starts_with("kms:")));
    assert_eq!(kms[0].resources, vec![stack.kms_key_arn.to_owned()]);
    assert_eq!(
        kms[0].conditions,
        vec![Cond {
            op: "StringEquals".into(),
            key: "kms:viaservice".into(),
            values: [format!("s3.{}.amazonaws.com", stack.region)].into(),
        }]
    );
}

#[test]
fn pattern_containment_follows_iam_wildcards() {
    for (outer, inner, want) in [
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/raw/alice/*", true),
        (
            "arn:aws:s3:::b/raw/*",
            "arn:aws:s3:::b/raw/alice/2026/x.age",
            true,
        ),
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/raw/", true),
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/*", false),
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/raw", false),
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/raw?alice/*", false),
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::bb/raw/x", false),
        ("arn:aws:s3:::b/r?w/*", "arn:aws:s3:::b/raw/x", true),
        ("arn:aws:s3:::b/r?w/*", "arn:aws:s3:::b/r?w/x", true),
        ("arn:aws:s3:::b/r?w/*", "arn:aws:s3:::b/r*w/x", false),
        ("arn:aws:s3:::b/*/x", "arn:aws:s3:::b/raw/alice/x", true),
        ("*", "arn:aws:s3:::b/*", true),
        ("a*", "*", false),
        ("abc", "abc", true),
        ("abc", "ab", false),
        ("ab", "abc", false),
    ] {
        assert_eq!(pattern_covers(outer, inner), want, "{outer} ⊇ {inner}");
    }
    assert!(action_covers("S3:PutObject", "s3:putobject"));
    assert!(action_covers("s3:Put*", "s3:PutObject"));
    assert!(action_covers("s3:*Object", "s3:GetObject"));
    assert!(!action_covers("s3:PutObject", "s3:PutObjectAcl"));
}

#[test]
fn the_check_rejects_policies_broader_than_the_boundary() {
    let stack = stacks()[0];
    let boundary = stack.boundary();
    let alice: ContractorId = "alice-01".parse().unwrap();
    let good = stack.session_policy(&alice);
    assert!(uncovered(&boundary, &good).is_empty());

    /// A change to a good session policy that must make it exceed the boundary.
    type Mutation = fn(&mut Value);
    let mutate = |f: Mutation| {
        let mut p = good.clone();
        f(&mut p);
        uncovered(&boundary, &p)
    };
    let cases: Vec<(&str, Mutation)> = vec![
        ("a read action", |p| {
            p["Statement"][0]["Action"]
                .as_array_mut()
                .unwrap()
                .push("s3:GetObject".into())
        }),
        ("a wildcard action", |p| {
            p["Statement"][0]["Action"] = "s3:*".into()
        }),
        ("the whole bucket", |p| {
            p["Statement"][0]["Resource"][0] = "arn:aws:s3:::voxseal-prod/*".into()
        }),
        ("another bucket", |p| {
            p["Statement"][0]["Resource"][0] = "arn:aws:s3:::voxseal-prod2/raw/alice-01/*".into()
        }),
        ("another prefix", |p| {
            p["Statement"][0]["Resource"][0] = "arn:aws:s3:::voxseal-prod/logs/alice-01/*".into()
        }),
        ("no encryption conditions", |p| {
            p["Statement"][0]
                .as_object_mut()
                .unwrap()
                .remove("Condition");
        }),
        ("another KMS key in the SSE condition", |p| {
            p["Statement"][0]["Condition"]["StringEqualsIfExists"]["s3:x-amz-server-side-encryption-aws-kms-key-id"] =
                "arn:aws:kms:eu-west-1:123456789012:key/other".into()
        }),
        ("SSE-S3 allowed too", |p| {
            p["Statement"][0]["Condition"]["StringEqualsIfExists"]["s3:x-amz-server-side-encryption"] =
                serde_json::json!(["aws:kms", "AES256"])
        }),
        ("another KMS key", |p| {
            p["Statement"][2]["Resource"] = "arn:aws:kms:eu-west-1:123456789012:key/*".into()
        }),
        ("KMS outside S3", |p| {
            p["Statement"][2]["Condition"]["StringEquals"]["kms:ViaService"] =
                "s3.us-east-1.amazonaws.com".into()
        }),
        ("kms:Encrypt", |p| {
            p["Statement"][2]["Action"]
                .as_array_mut()
                .unwrap()
                .push("kms:Encrypt".into())
        }),
    ];
    for (what, f) in cases {
        assert!(!mutate(f).is_empty(), "{what}: not detected");
    }
}
