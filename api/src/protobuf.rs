//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! for the kinds whose kubectl verbs send nothing else: `kubectl create configmap`,
//! `create secret` and `create serviceaccount` use client-go's typed clients, which speak
//! protobuf to built-in kinds. The envelope (`k8s\0` + `runtime.Unknown`) and the fields of
//! ConfigMap, Secret, ServiceAccount and the ObjectMeta those verbs fill are decoded into
//! the JSON the rest of admission takes. A field not decoded here is refused by its number,
//! never dropped; other kinds are 415, so a client sends them as JSON.

use crate::errors::ApiError;
use coracle_config::base64;
use serde_json::{json, Map, Value};

const MAGIC: &[u8] = b"k8s\0";

/// One field of a message: its number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32- and 64-bit values: no field decoded here has them.
    Fixed,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("error decoding protobuf request body: {}", message.into()))
}

/// The fields of one message, in order.
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let number = key >> 3;
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut buf)?),
            1 => {
                buf = buf.get(8..).ok_or_else(|| bad("truncated fixed64"))?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| bad("length out of range"))?;
                if len > buf.len() {
                    return Err(bad("truncated length-delimited field"));
                }
                let (value, rest) = buf.split_at(len);
                buf = rest;
                Field::Bytes(value)
            }
            5 => {
                buf = buf.get(4..).ok_or_else(|| bad("truncated fixed32"))?;
                Field::Fixed
            }
            other => return Err(bad(format!("unsupported wire type {other}"))),
        };
        out.push((number, field));
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, ApiError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or_else(|| bad("truncated varint"))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(bad("varint longer than 10 bytes"))
}

fn bytes<'a>(field: &Field<'a>, path: &str) -> Result<&'a [u8], ApiError> {
    match field {
        Field::Bytes(b) => Ok(b),
        _ => Err(bad(format!("{path}: expected a length-delimited field"))),
    }
}

fn string(field: &Field<'_>, path: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes(field, path)?.to_vec()).map_err(|_| bad(format!("{path}: not UTF-8")))
}

fn boolean(field: &Field<'_>, path: &str) -> Result<bool, ApiError> {
    match field {
        Field::Varint(v) => Ok(*v != 0),
        _ => Err(bad(format!("{path}: expected a varint"))),
    }
}

/// Go's generated code writes every non-pointer field, set or not: an empty string or
/// message and a zero number mean "unset", and are skipped wherever they appear.
fn is_zero(field: &Field<'_>) -> bool {
    matches!(field, Field::Varint(0)) || matches!(field, Field::Bytes(b) if b.is_empty())
}

fn unsupported(path: &str, number: u64) -> ApiError {
    ApiError::BadRequest(format!(
        "protobuf field {number} of {path} is not supported by Coracle; send the object as JSON"
    ))
}

/// A `map<string, string>` (or `map<string, bytes>`, as base64 when `binary`) entry into `map`.
fn map_entry(field: &Field<'_>, path: &str, binary: bool, map: &mut Map<String, Value>) -> Result<(), ApiError> {
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    for (number, f) in fields(bytes(field, path)?)? {
        match number {
            1 => key = string(&f, path)?,
            2 if binary => value = json!(base64::encode(bytes(&f, path)?)),
            2 => value = json!(string(&f, path)?),
            n => return Err(unsupported(path, n)),
        }
    }
    map.insert(key, value);
    Ok(())
}

/// `ObjectMeta`: what clients set on a new object. A zero `creationTimestamp` (an empty
/// message, as Go's zero Time encodes) means none.
fn object_meta(buf: &[u8]) -> Result<Value, ApiError> {
    let mut meta = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for (number, f) in fields(buf)? {
        let name = match number {
            1 => "name",
            2 => "generateName",
            3 => "namespace",
            5 => "uid",
            6 => "resourceVersion",
            _ if is_zero(&f) => continue,
            11 => {
                map_entry(&f, "metadata.labels", false, &mut labels)?;
                continue;
            }
            12 => {
                map_entry(&f, "metadata.annotations", false, &mut annotations)?;
                continue;
            }
            14 => {
                finalizers.push(json!(string(&f, "metadata.finalizers")?));
                continue;
            }
            n => return Err(unsupported("metadata", n)),
        };
        meta.insert(name.into(), json!(string(&f, &format!("metadata.{name}"))?));
    }
    for (key, value) in [("labels", labels), ("annotations", annotations)] {
        if !value.is_empty() {
            meta.insert(key.into(), Value::Object(value));
        }
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

/// The body of one kind, as its JSON.
fn object(kind: &str, raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!(kind));
    let (mut data, mut other) = (Map::new(), Map::new());
    for (number, f) in fields(raw)? {
        match (kind, number) {
            (_, 1) => {
                obj.insert("metadata".into(), object_meta(bytes(&f, "metadata")?)?);
            }
            (_, _) if is_zero(&f) => {}
            ("ConfigMap", 2) => map_entry(&f, "data", false, &mut data)?,
            ("ConfigMap", 3) => map_entry(&f, "binaryData", true, &mut other)?,
            ("ConfigMap", 4) | ("Secret", 5) => {
                obj.insert("immutable".into(), json!(boolean(&f, "immutable")?));
            }
            ("Secret", 2) => map_entry(&f, "data", true, &mut data)?,
            ("Secret", 3) => {
                obj.insert("type".into(), json!(string(&f, "type")?));
            }
            ("Secret", 4) => map_entry(&f, "stringData", false, &mut other)?,
            ("ServiceAccount", 4) => {
                obj.insert("automountServiceAccountToken".into(), json!(boolean(&f, "automountServiceAccountToken")?));
            }
            (_, n) => return Err(unsupported(kind, n)),
        }
    }
    let (data_key, other_key) = match kind {
        "ConfigMap" => ("data", "binaryData"),
        _ => ("data", "stringData"),
    };
    for (key, value) in [(data_key, data), (other_key, other)] {
        if !value.is_empty() {
            obj.insert(key.into(), Value::Object(value));
        }
    }
    Ok(Value::Object(obj))
}

/// Decodes a protobuf request body into the object's JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| bad("the body does not start with the k8s\\0 prefix"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (number, f) in fields(envelope)? {
        match number {
            1 => {
                for (n, t) in fields(bytes(&f, "typeMeta")?)? {
                    match n {
                        1 => api_version = string(&t, "typeMeta.apiVersion")?,
                        2 => kind = string(&t, "typeMeta.kind")?,
                        _ => {}
                    }
                }
            }
            2 => raw = bytes(&f, "raw")?,
            // contentEncoding and contentType: empty for a plain protobuf object.
            _ if is_zero(&f) => {}
            n => return Err(unsupported("the protobuf envelope", n)),
        }
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", k @ ("ConfigMap" | "Secret" | "ServiceAccount")) => object(k, raw),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "application/vnd.kubernetes.protobuf for {kind} {api_version} (Coracle reads protobuf only for \
             ConfigMaps, Secrets and ServiceAccounts; send JSON)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, number << 3 | 2);
        put_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
        out
    }

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn entry(number: u64, key: &str, value: &[u8]) -> Vec<u8> {
        field(number, &[field(1, key.as_bytes()), field(2, value)].concat())
    }

    fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, b"v1"), field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, raw), field(3, b""), field(4, b"")].concat()
    }

    #[test]
    fn a_kubectl_config_map_decodes_to_its_json() {
        // As Go writes it: unset strings, the zero creationTimestamp and generation 0 included.
        let meta = [
            field(1, b"app"),
            field(3, b"default"),
            field(4, b""),
            vec![7 << 3, 0],
            field(8, b""),
            entry(11, "tier", b"web"),
        ]
        .concat();
        let raw = [field(1, &meta), entry(2, "color", b"blue"), entry(3, "bin", &[0, 255]), vec![4 << 3, 1]].concat();
        assert_eq!(
            decode(&envelope("ConfigMap", &raw)).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "app", "namespace": "default", "labels": {"tier": "web"}},
                   "data": {"color": "blue"}, "binaryData": {"bin": "AP8="}, "immutable": true})
        );
    }

    #[test]
    fn a_secret_decodes_with_its_type_and_bytes() {
        let raw = [field(1, &field(1, b"db")), entry(2, "password", b"pw"), field(3, b"Opaque")].concat();
        assert_eq!(
            decode(&envelope("Secret", &raw)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                   "data": {"password": "cHc="}, "type": "Opaque"})
        );
    }

    #[test]
    fn unknown_fields_kinds_and_truncations_are_refused() {
        let raw = [field(1, &field(1, b"x")), field(9, b"?")].concat();
        let e = decode(&envelope("ConfigMap", &raw)).unwrap_err();
        assert!(format!("{e:?}").contains("protobuf field 9 of ConfigMap is not supported"), "{e:?}");
        assert!(matches!(decode(&envelope("Pod", b"")), Err(ApiError::UnsupportedMediaType(_))));
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        assert!(decode(b"{}").is_err());
        assert!(decode(b"k8s\0\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01").is_err(), "an 11-byte varint");
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panic() {
        // A deterministic sweep of mutations of a valid body: every byte flipped, every
        // truncation, every prefix of garbage.
        let raw = [field(1, &[field(1, b"app"), entry(12, "a", b"b")].concat()), entry(2, "k", b"v")].concat();
        let good = envelope("ConfigMap", &raw);
        for i in 0..good.len() {
            let _ = decode(&good[..i]);
            for bit in 0..8 {
                let mut m = good.clone();
                m[i] ^= 1 << bit;
                let _ = decode(&m);
            }
        }
    }
}
