//! Input formats of the structured fuzz targets: one decoder per target (used by the targets) and
//! the matching encoders (used by `seedgen` to write seeds). Shared by `#[path]` so that the seed
//! generator does not link libFuzzer.
//!
//! Every decoder accepts every byte string: missing bytes read as zero, so the fuzzer can never
//! produce an input the harness refuses.
#![allow(dead_code)]

/// The fixed age identity of the `age_open` target (a fuzzing-only key: it protects nothing).
pub const AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-19QUG3EQ7YXGJ47RJYXXUG0TPVNJQKXMEMPHJF3LVUH6X50U88DLS4VX5YL";
/// Its recipient.
pub const AGE_RECIPIENT: &str = "age1gn0r2ejc8u6qzsyjpxtk73zaqf962cu5e7vduf672ehva8fapugsqjmgq8";

/// Enrollment code of `alice-01` in the `broker_request` registry (pending, valid until 2099).
pub const BROKER_CODE: &str = "vxe_0123456789ab_abcdefghijklmnopqrstuvwxyz234567";
/// Enrollment code `dave-04` redeemed: spent codes leave the registry, so it is unknown.
pub const BROKER_CODE_USED: &str = "vxe_111111111111_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
/// Enrollment code of `erin-05` (expired).
pub const BROKER_CODE_EXPIRED: &str = "vxe_222222222222_cccccccccccccccccccccccccccccccc";
/// Device token of `bob-02` (enrolled).
pub const BROKER_TOKEN: &str = "vxt_a1b2c3d4e5f6_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// Device token of `carol-03` (revoked).
pub const BROKER_TOKEN_REVOKED: &str =
    "vxt_0a0b0c0d0e0f_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

/// Reads a fuzz input front to back; past the end every read is zero / empty.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
    pub fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let got = self.bytes(2);
        b[..got.len()].copy_from_slice(got);
        u16::from_le_bytes(b)
    }
    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let got = self.bytes(4);
        b[..got.len()].copy_from_slice(got);
        u32::from_le_bytes(b)
    }
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let got = self.bytes(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(b)
    }
    /// A length-prefixed (u8) byte string.
    pub fn short(&mut self) -> &'a [u8] {
        let n = self.u8() as usize;
        self.bytes(n)
    }
    /// A length-prefixed (u16 LE) byte string.
    pub fn long(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.bytes(n)
    }
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

// ---------------------------------------------------------------------------------------------
// spool_reader

/// Byte 0 of a `spool_reader` input: even = the rest is a spool file read with the harness's key;
/// odd = structured (a valid spool made by the real writer, then edited).
pub const SPOOL_RAW: u8 = 0;
pub const SPOOL_STRUCTURED: u8 = 1;

/// One edit of a valid spool file.
#[derive(Debug, Clone, Copy)]
pub enum SpoolOp {
    /// Flip bit `val % 8` of the byte at `arg % len`.
    Flip { arg: u32, val: u8 },
    /// Set the byte at `arg % len` to `val`.
    Set { arg: u32, val: u8 },
    /// Cut the file to `arg % (len + 1)` bytes.
    Truncate { arg: u32 },
    /// Insert `val` at `arg % (len + 1)`.
    Insert { arg: u32, val: u8 },
    /// Delete `val + 1` bytes from `arg % len`.
    Delete { arg: u32, val: u8 },
    /// Duplicate record `arg % records`.
    DupRecord { arg: u32 },
    /// Remove record `arg % records`.
    DropRecord { arg: u32 },
    /// Swap records `arg % records` and `val % records`.
    SwapRecords { arg: u32, val: u8 },
    /// Append `val + 1` copies of `val`.
    Append { val: u8 },
}

impl SpoolOp {
    const SIZE: usize = 6;

    pub fn decode(kind: u8, arg: u32, val: u8) -> Self {
        match kind % 9 {
            0 => Self::Flip { arg, val },
            1 => Self::Set { arg, val },
            2 => Self::Truncate { arg },
            3 => Self::Insert { arg, val },
            4 => Self::Delete { arg, val },
            5 => Self::DupRecord { arg },
            6 => Self::DropRecord { arg },
            7 => Self::SwapRecords { arg, val },
            _ => Self::Append { val },
        }
    }

    fn encode(self) -> [u8; Self::SIZE] {
        let (kind, arg, val) = match self {
            Self::Flip { arg, val } => (0, arg, val),
            Self::Set { arg, val } => (1, arg, val),
            Self::Truncate { arg } => (2, arg, 0),
            Self::Insert { arg, val } => (3, arg, val),
            Self::Delete { arg, val } => (4, arg, val),
            Self::DupRecord { arg } => (5, arg, 0),
            Self::DropRecord { arg } => (6, arg, 0),
            Self::SwapRecords { arg, val } => (7, arg, val),
            Self::Append { val } => (8, 0, val),
        };
        let a = arg.to_le_bytes();
        [kind, a[0], a[1], a[2], a[3], val]
    }
}

/// A structured `spool_reader` input.
#[derive(Debug, Clone)]
pub struct SpoolInput {
    /// Which prepared valid spool (index modulo their number).
    pub base: u8,
    /// Read buffer size selector.
    pub buf: u8,
    pub ops: Vec<SpoolOp>,
}

impl SpoolInput {
    pub fn decode(inp: &mut Input<'_>) -> Self {
        let base = inp.u8();
        let buf = inp.u8();
        let mut ops = Vec::new();
        while inp.len() >= SpoolOp::SIZE {
            let kind = inp.u8();
            let arg = inp.u32();
            let val = inp.u8();
            ops.push(SpoolOp::decode(kind, arg, val));
        }
        Self { base, buf, ops }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![SPOOL_STRUCTURED, self.base, self.buf];
        for op in &self.ops {
            out.extend_from_slice(&op.encode());
        }
        out
    }
}

/// Record boundaries of a (possibly damaged) spool file: `(header_len, [(start, end)])`, as far as
/// the length fields make sense.
pub fn spool_records(bytes: &[u8]) -> (usize, Vec<(usize, usize)>) {
    if bytes.len() < 22 {
        return (bytes.len(), Vec::new());
    }
    let hlen = (22 + bytes[21] as usize).min(bytes.len());
    let mut recs = Vec::new();
    let mut pos = hlen;
    while pos + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let end = pos + 4 + len;
        if end > bytes.len() {
            break;
        }
        recs.push((pos, end));
        pos = end;
    }
    (hlen, recs)
}

/// Applies one edit.
pub fn apply_spool_op(bytes: &mut Vec<u8>, op: SpoolOp) {
    let len = bytes.len();
    match op {
        SpoolOp::Flip { arg, val } if len > 0 => bytes[arg as usize % len] ^= 1 << (val % 8),
        SpoolOp::Set { arg, val } if len > 0 => bytes[arg as usize % len] = val,
        SpoolOp::Truncate { arg } => bytes.truncate(arg as usize % (len + 1)),
        SpoolOp::Insert { arg, val } => bytes.insert(arg as usize % (len + 1), val),
        SpoolOp::Delete { arg, val } if len > 0 => {
            let start = arg as usize % len;
            let end = (start + val as usize + 1).min(len);
            bytes.drain(start..end);
        }
        SpoolOp::DupRecord { arg } => {
            let (_, recs) = spool_records(bytes);
            if !recs.is_empty() {
                let (s, e) = recs[arg as usize % recs.len()];
                let copy = bytes[s..e].to_vec();
                bytes.splice(e..e, copy);
            }
        }
        SpoolOp::DropRecord { arg } => {
            let (_, recs) = spool_records(bytes);
            if !recs.is_empty() {
                let (s, e) = recs[arg as usize % recs.len()];
                bytes.drain(s..e);
            }
        }
        SpoolOp::SwapRecords { arg, val } => {
            let (hlen, recs) = spool_records(bytes);
            if recs.len() >= 2 {
                let (i, j) = (arg as usize % recs.len(), val as usize % recs.len());
                if i != j {
                    let mut parts: Vec<Vec<u8>> =
                        recs.iter().map(|&(s, e)| bytes[s..e].to_vec()).collect();
                    parts.swap(i, j);
                    let tail_start = recs.last().expect("non-empty").1;
                    let tail = bytes[tail_start..].to_vec();
                    bytes.truncate(hlen);
                    for p in parts {
                        bytes.extend_from_slice(&p);
                    }
                    bytes.extend_from_slice(&tail);
                }
            }
        }
        SpoolOp::Append { val } => bytes.extend(std::iter::repeat_n(val, val as usize + 1)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// audit_line

pub const AUDIT_RAW: u8 = 0;
pub const AUDIT_STRUCTURED: u8 = 1;

/// One line of a structured `audit_line` input. Lines are written with a correct hash over their
/// own text (the chain is unkeyed SHA-256, so anyone can do this), which gets the fuzzer past the
/// hash check to the chain logic and to `AuditLog::append`.
#[derive(Debug, Clone, Default)]
pub struct AuditLineSpec {
    /// bit 0: explicit `seq`; bit 1: wrong `prev`; bit 2: explicit details; bit 3: explicit time;
    /// bit 4: no trailing newline (torn; ends the log); bit 5: flip one byte after hashing;
    /// bit 7: a raw line (`raw` + newline, no hash).
    pub flags: u8,
    pub seq: u64,
    pub wrong_prev: u8,
    pub event: Vec<u8>,
    pub details: Vec<u8>,
    pub time: Vec<u8>,
    pub flip_at: u16,
    pub raw: Vec<u8>,
}

impl AuditLineSpec {
    pub const EXPLICIT_SEQ: u8 = 1;
    pub const WRONG_PREV: u8 = 2;
    pub const DETAILS: u8 = 4;
    pub const TIME: u8 = 8;
    pub const TORN: u8 = 16;
    pub const FLIP: u8 = 32;
    pub const RAW: u8 = 128;

    pub fn decode(inp: &mut Input<'_>) -> Self {
        let flags = inp.u8();
        let mut s = Self {
            flags,
            ..Self::default()
        };
        if flags & Self::RAW != 0 {
            s.raw = inp.short().to_vec();
            return s;
        }
        if flags & Self::EXPLICIT_SEQ != 0 {
            s.seq = inp.u64();
        }
        if flags & Self::WRONG_PREV != 0 {
            s.wrong_prev = inp.u8();
        }
        s.event = inp.short().to_vec();
        if flags & Self::DETAILS != 0 {
            s.details = inp.short().to_vec();
        }
        if flags & Self::TIME != 0 {
            s.time = inp.short().to_vec();
        }
        if flags & Self::FLIP != 0 {
            s.flip_at = inp.u16();
        }
        s
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.flags);
        let short = |out: &mut Vec<u8>, b: &[u8]| {
            out.push(b.len().min(255) as u8);
            out.extend_from_slice(&b[..b.len().min(255)]);
        };
        if self.flags & Self::RAW != 0 {
            short(out, &self.raw);
            return;
        }
        if self.flags & Self::EXPLICIT_SEQ != 0 {
            out.extend_from_slice(&self.seq.to_le_bytes());
        }
        if self.flags & Self::WRONG_PREV != 0 {
            out.push(self.wrong_prev);
        }
        short(out, &self.event);
        if self.flags & Self::DETAILS != 0 {
            short(out, &self.details);
        }
        if self.flags & Self::TIME != 0 {
            short(out, &self.time);
        }
        if self.flags & Self::FLIP != 0 {
            out.extend_from_slice(&self.flip_at.to_le_bytes());
        }
    }
}

/// A structured `audit_line` input: lines until the input ends.
pub fn encode_audit(lines: &[AuditLineSpec]) -> Vec<u8> {
    let mut out = vec![AUDIT_STRUCTURED];
    for l in lines {
        l.encode(&mut out);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// broker_request

/// Methods and paths of the "other route" case.
pub const BROKER_METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"];
pub const BROKER_PATHS: [&str; 8] = [
    "/v1/enroll",
    "/v1/sessions",
    "/healthz",
    "/",
    "/v1/enroll/",
    "/v1/sessions?x=1",
    "/V1/ENROLL",
    "/v1/%2e%2e/healthz",
];
/// Content-Type values.
pub const BROKER_CONTENT_TYPES: [&str; 8] = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "text/plain",
    "application/jsonx",
    "",
    "application/json;",
    "multipart/form-data; boundary=x",
];

/// A `broker_request` input.
#[derive(Debug, Clone, Default)]
pub struct BrokerInput {
    /// bits 0-1: 0 = POST /v1/enroll, 1 and 3 = POST /v1/sessions, 2 = method `(b >> 2) % 6`
    /// on path `(b >> 5) % 8` from the lists above.
    pub route: u8,
    /// bit 0: send Content-Type `BROKER_CONTENT_TYPES[(b >> 1) % 8]`; bit 4: send Authorization.
    pub headers: u8,
    /// The Authorization header's bytes.
    pub authorization: Vec<u8>,
    pub body: Vec<u8>,
}

impl BrokerInput {
    pub const ENROLL: u8 = 0;
    pub const SESSIONS: u8 = 1;
    pub const HAS_CONTENT_TYPE: u8 = 1;
    pub const HAS_AUTHORIZATION: u8 = 16;

    pub fn decode(inp: &mut Input<'_>) -> Self {
        let route = inp.u8();
        let headers = inp.u8();
        let authorization = if headers & Self::HAS_AUTHORIZATION != 0 {
            inp.short().to_vec()
        } else {
            Vec::new()
        };
        Self {
            route,
            headers,
            authorization,
            body: inp.rest().to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.route, self.headers];
        if self.headers & Self::HAS_AUTHORIZATION != 0 {
            out.push(self.authorization.len().min(255) as u8);
            out.extend_from_slice(&self.authorization[..self.authorization.len().min(255)]);
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// `(method, path)`.
    pub fn target(&self) -> (&'static str, &'static str) {
        match self.route & 3 {
            0 => ("POST", "/v1/enroll"),
            2 => (
                BROKER_METHODS[(self.route as usize >> 2) % BROKER_METHODS.len()],
                BROKER_PATHS[(self.route as usize >> 5) % BROKER_PATHS.len()],
            ),
            _ => ("POST", "/v1/sessions"),
        }
    }

    pub fn content_type(&self) -> Option<&'static str> {
        (self.headers & Self::HAS_CONTENT_TYPE != 0).then(|| {
            BROKER_CONTENT_TYPES[(self.headers as usize >> 1) % BROKER_CONTENT_TYPES.len()]
        })
    }
}

// ---------------------------------------------------------------------------------------------
// project_config

/// Byte 0 of a `project_config` input (modulo 3).
pub const CONFIG_TOML: u8 = 0;
pub const CONFIG_PROMPTS: u8 = 1;
pub const CONFIG_SIGNATURE: u8 = 2;

/// `[CONFIG_SIGNATURE][u16 len][public key text][u16 len][signature text][data...]`.
pub fn encode_signature_input(public_key: &[u8], signature: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = vec![CONFIG_SIGNATURE];
    for part in [public_key, signature] {
        out.extend_from_slice(&(part.len() as u16).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(data);
    out
}

// ---------------------------------------------------------------------------------------------
// age_open

/// Byte 0 of an `age_open` input: even = the rest is the file (bits 1-2 pick the expected kind:
/// 0/3 none, 1 raw, 2 features; bit 3 set = the expected hash is wrong); odd = structured: the
/// harness encrypts the plaintext to its own recipient, then applies `mutation`.
pub const AGE_RAW: u8 = 0;
pub const AGE_STRUCTURED: u8 = 1;

/// A structured `age_open` input.
#[derive(Debug, Clone, Default)]
pub struct AgeInput {
    /// Byte 0 (odd); bits 1-2: expected kind as above; bit 3: wrong expected hash.
    pub flags: u8,
    /// 0 none, 1 flip a bit at `at`, 2 truncate at `at`, 3 append `at % 256` bytes, 4 none.
    pub mutation: u8,
    pub at: u16,
    pub plaintext: Vec<u8>,
}

impl AgeInput {
    pub fn decode(flags: u8, inp: &mut Input<'_>) -> Self {
        Self {
            flags,
            mutation: inp.u8() % 5,
            at: inp.u16(),
            plaintext: inp.rest().to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags | AGE_STRUCTURED, self.mutation];
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.plaintext);
        out
    }
}
