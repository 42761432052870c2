//! The binding: the manifest's fields sealed inside each payload, so a manifest edited after
//! sealing (or a payload moved in from another sample) is detected when the payload is opened.
//!
//! The binding is the manifest as JSON without `payloads` (the ciphertexts' own sizes and hashes
//! cannot be inside them) and without `features.frames` (known only once the features are
//! written; the tensors' shape carries it). It is written as compact JSON with sorted keys:
//! - features: the safetensors `__metadata__` entry [`METADATA_KEY`];
//! - raw audio: a RIFF chunk [`WAV_CHUNK`] between `fmt ` and `data` (WAV readers skip chunks
//!   they do not know).
//!
//! Both sit inside the age encryption, so they are authenticated by its AEAD: whoever holds
//! either key can check the manifest against the payload they can open. Readers compare parsed
//! JSON values, not bytes.

use serde_json::Value;

use crate::project::manifest::Manifest;

/// The safetensors metadata key holding the binding.
pub const METADATA_KEY: &str = "voxseal.binding";
/// The RIFF chunk id holding the binding in a sealed WAV.
pub const WAV_CHUNK: [u8; 4] = *b"vxsb";
/// The largest binding written or read (it must fit in the first 64 KiB of a payload).
pub const MAX_LEN: usize = 32 * 1024;

/// The binding of `m`: its JSON without `payloads` and `features.frames`.
pub fn of_manifest(m: &Manifest) -> Value {
    let mut v = serde_json::to_value(m).expect("manifests always serialize");
    if let Some(o) = v.as_object_mut() {
        o.remove("payloads");
        if let Some(f) = o.get_mut("features").and_then(Value::as_object_mut) {
            f.remove("frames");
        }
    }
    v
}

/// The binding of `m` as bytes (compact JSON, keys sorted); refuses one over [`MAX_LEN`].
pub fn to_bytes(m: &Manifest) -> std::io::Result<Vec<u8>> {
    let bytes = serde_json::to_vec(&of_manifest(m)).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the manifest's binding is {} bytes, over the {MAX_LEN}-byte limit",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Parses a binding's text.
fn parse(bytes: &[u8]) -> Result<Value, String> {
    if bytes.len() > MAX_LEN {
        return Err(format!("its binding is over {MAX_LEN} bytes"));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("its binding is not a JSON object".into()),
        Err(e) => Err(format!("its binding is not valid JSON: {e}")),
    }
}

/// The binding in a safetensors header (`head`: the file's first bytes), if it has one.
pub fn from_safetensors(head: &[u8]) -> Result<Option<Value>, String> {
    let n = head
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or("too short")?;
    let json = usize::try_from(n)
        .ok()
        .and_then(|n| head.get(8..8usize.checked_add(n)?))
        .ok_or("header larger than 64 KiB")?;
    let v: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    match v.get("__metadata__").and_then(|m| m.get(METADATA_KEY)) {
        None => Ok(None),
        Some(Value::String(s)) => parse(s.as_bytes()).map(Some),
        Some(_) => Err(format!("metadata {METADATA_KEY} is not a string")),
    }
}

/// Walks a WAV's RIFF chunks in `head`; calls `each(id, offset of its body, body)` for every chunk
/// that starts within `head` (the body is cut at `head`'s end). Stops after `data`.
fn chunks(head: &[u8], mut each: impl FnMut([u8; 4], usize, &[u8]) -> bool) {
    if head.len() < 12 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return;
    }
    let mut pos = 12usize;
    while let Some(h) = head.get(pos..pos + 8) {
        let id: [u8; 4] = h[..4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")) as usize;
        let body = &head[pos + 8..head.len().min(pos + 8 + len)];
        if !each(id, pos + 8, body) || &id == b"data" {
            return;
        }
        // Chunks are padded to an even length.
        pos = pos + 8 + len + (len & 1);
    }
}

/// Where a WAV's sample data starts, if `head` reaches its `data` chunk.
pub fn wav_data_offset(head: &[u8]) -> Option<u64> {
    let mut at = None;
    chunks(head, |id, offset, _| {
        if &id == b"data" {
            at = Some(offset as u64);
        }
        at.is_none()
    });
    at
}

/// The binding in a WAV's [`WAV_CHUNK`] (`head`: the file's first bytes), if it has one.
pub fn from_wav(head: &[u8]) -> Result<Option<Value>, String> {
    let mut found = None;
    chunks(head, |id, _, body| {
        if id == WAV_CHUNK {
            found = Some(body.to_vec());
        }
        found.is_none()
    });
    found.map(|b| parse(&b)).transpose()
}

/// The first field (a dotted path, e.g. `quality.overall`) where `sealed` and `manifest` differ.
pub fn first_difference(sealed: &Value, manifest: &Value) -> Option<String> {
    fn walk(a: &Value, b: &Value, path: &str) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().find_map(|k| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match (x.get(k), y.get(k)) {
                        (Some(a), Some(b)) => walk(a, b, &p),
                        _ => Some(p),
                    }
                })
            }
            _ if a == b => None,
            _ => Some(if path.is_empty() {
                "(the whole manifest)".into()
            } else {
                path.into()
            }),
        }
    }
    walk(sealed, manifest, "")
}

/// Looks up a dotted path (for showing both sides of a difference).
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_field() {
        let a = json!({"prompt_id": "p1", "quality": {"overall": "pass", "rms": 1.5}, "x": [1, 2]});
        assert_eq!(first_difference(&a, &a.clone()), None);
        let mut b = a.clone();
        b["quality"]["overall"] = json!("fail");
        assert_eq!(first_difference(&a, &b).as_deref(), Some("quality.overall"));
        let mut b = a.clone();
        b["x"] = json!([1]);
        assert_eq!(first_difference(&a, &b).as_deref(), Some("x"));
        let mut b = a.clone();
        b.as_object_mut().unwrap().remove("prompt_id");
        assert_eq!(first_difference(&a, &b).as_deref(), Some("prompt_id"));
        assert_eq!(at(&a, "quality.rms"), Some(&json!(1.5)));
    }

    #[test]
    fn the_wav_chunk_is_found_before_data() {
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt \x02\0\0\0ab");
        w.extend_from_slice(b"vxsb\x07\0\0\0{\"a\":1}\0");
        w.extend_from_slice(b"data\x04\0\0\0abcd");
        assert_eq!(from_wav(&w).unwrap(), Some(json!({"a": 1})));
        assert_eq!(wav_data_offset(&w), Some(w.len() as u64 - 4));
        assert_eq!(from_wav(b"RIFF\0\0\0\0WAVEdata\0\0\0\0").unwrap(), None);
        assert!(from_wav(b"RIFF\0\0\0\0WAVEvxsb\x01\0\0\0[\0").is_err());
    }
}
