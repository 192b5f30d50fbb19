//! Typed decoding of a JSON value in one pass that also yields the paths of the fields the
//! type does not know and the path of the field an error is about
//! (`spec.template.spec.containers[0].imagee`).
//!
//! A deserializer of its own rather than serde_ignored wrapped in serde_path_to_error:
//! those wrap every visitor twice, and with the derive code of every Kubernetes kind
//! instantiated through both layers they cost the binary about 700 KiB; this costs about
//! what a plain `serde_json::from_value` does.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// A decoding failure: the message serde gave and the path of the field it is about
/// (empty for the top level).
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DecodeError {}

/// A field the decoded type has no place for: its path, and the name of the struct it sits
/// in (`PodSpec` for `spec.affinity`), so a caller can tell a field of Kubernetes' API that
/// is not implemented from one that does not exist at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    pub path: String,
    /// The Rust struct whose fields were being decoded, `None` outside a struct (a map's
    /// entry, an enum's content).
    pub within: Option<&'static str>,
    /// The field's own name (the last step of `path`).
    pub field: String,
}

/// Decodes `T` from `value`; on success also returns the fields `T` ignored, in document
/// order.
///
/// An explicit `null` means "absent", as in Kubernetes' decoder: an `Option` becomes
/// `None`, and a list, map, struct, string, number or boolean its default (empty, zero,
/// false), so `annotations: null` or `envFrom: null` in rendered Helm output decode as if
/// the line were not there. (Only full objects come through here; in a merge patch `null`
/// deletes, and patches are applied to JSON before this decoding.)
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<(T, Vec<Unknown>), DecodeError> {
    let unknown = RefCell::new(Vec::new());
    let node = Node { value, path: Path::Root, within: None, unknown: &unknown };
    match T::deserialize(node) {
        Ok(t) => Ok((t, unknown.into_inner())),
        Err(e) => Err(DecodeError { path: e.path.unwrap_or_default(), message: e.message }),
    }
}

/// Decodes `T` from `value`, ignoring unknown fields as `serde_json::from_value` does, with
/// the failing field's path in the error.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    decode(value).map(|(t, _)| t)
}

/// The error serde's visitors build while decoding; `path` is set by the innermost map or
/// sequence the error passes through.
#[derive(Debug)]
struct Error {
    message: String,
    path: Option<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<M: fmt::Display>(message: M) -> Error {
        Error { message: message.to_string(), path: None }
    }

    // serde_json calls a null `null`, not serde's `unit value`; the messages stay serde_json's.
    fn invalid_type(unexp: de::Unexpected<'_>, expected: &dyn de::Expected) -> Error {
        de::Error::custom(format_args!("invalid type: {}, expected {expected}", JsonUnexpected(unexp)))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, expected: &dyn de::Expected) -> Error {
        de::Error::custom(format_args!("invalid value: {}, expected {expected}", JsonUnexpected(unexp)))
    }
}

/// An unexpected value, named as serde_json names it.
struct JsonUnexpected<'a>(de::Unexpected<'a>);

impl fmt::Display for JsonUnexpected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            de::Unexpected::Unit => f.write_str("null"),
            other => other.fmt(f),
        }
    }
}

/// Where a value sits in the document, borrowed from the callers up the stack: rendered
/// to text only for an error or an ignored field, so decoding allocates no paths.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, index) => {
                parent.write(out);
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
}

/// Names the field of an error that has no path yet.
fn located<T>(result: Result<T, Error>, path: &Path<'_>) -> Result<T, Error> {
    result.map_err(|mut e| {
        if e.path.is_none() {
            e.path = Some(path.render());
        }
        e
    })
}

/// How serde's `invalid type` messages name a JSON value.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => de::Unexpected::Unsigned(u),
            (None, Some(i)) => de::Unexpected::Signed(i),
            _ => de::Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// One value of the document, with its path, the struct it is a field of, and the shared
/// list of ignored fields.
struct Node<'a> {
    value: Value,
    path: Path<'a>,
    within: Option<&'static str>,
    unknown: &'a RefCell<Vec<Unknown>>,
}

impl<'a> Node<'a> {
    fn invalid_type<E: de::Error>(&self, expected: &dyn de::Expected) -> E {
        E::invalid_type(unexpected(&self.value), expected)
    }

    fn visit_number<'de, V: Visitor<'de>>(n: Number, visitor: V) -> Result<V::Value, Error> {
        if let Some(u) = n.as_u64() {
            visitor.visit_u64(u)
        } else if let Some(i) = n.as_i64() {
            visitor.visit_i64(i)
        } else {
            visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    fn visit_array<'de, V: Visitor<'de>>(&self, items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
        let len = items.len();
        let mut seq = Seq { items: items.into_iter(), index: 0, parent: self };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.items.as_slice().is_empty() {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(len, &"fewer elements in array"))
        }
    }

    fn visit_object<'de, V: Visitor<'de>>(
        &self,
        map: Map<String, Value>,
        owner: Option<&'static str>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = Entries { entries: map.into_iter(), pending: None, owner, parent: self };
        visitor.visit_map(&mut access)
    }

    /// `null` as the empty or zero value the visitor expects (see [`decode`]).
    fn null_as<'de, V: Visitor<'de>>(self, visitor: V, empty: Value) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => de::Deserializer::deserialize_any(Node { value: empty, ..self }, visitor),
            _ => de::Deserializer::deserialize_any(self, visitor),
        }
    }
}

/// Numbers: `null` is zero (see [`decode`]).
macro_rules! null_as_zero {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.null_as(visitor, Value::Number(Number::from(0u8)))
        })*
    };
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let Node { value, path, within, unknown } = self;
        let shell = Node { value: Value::Null, path, within, unknown };
        match value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => Node::visit_number(n, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => shell.visit_array(items, visitor),
            Value::Object(map) => shell.visit_object(map, None, visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.null_as(visitor, Value::Array(Vec::new()))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.null_as(visitor, Value::Object(Map::new()))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.null_as(visitor, Value::String(String::new()))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.null_as(visitor, Value::String(String::new()))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.null_as(visitor, Value::Bool(false))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Node { value, path, within, unknown } = self;
        let shell = Node { value: Value::Null, path, within, unknown };
        match value {
            Value::Object(map) => shell.visit_object(map, Some(name), visitor),
            Value::Array(items) => shell.visit_array(items, visitor),
            // Below the top level, `null` is the struct left out; at the top it is no object.
            Value::Null if !matches!(path, Path::Root) => shell.visit_object(Map::new(), Some(name), visitor),
            value => Err(Node { value, ..shell }.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (name, value) = match self.value {
            Value::String(s) => (s, None),
            Value::Object(map) if map.len() == 1 => {
                let (k, v) = map.into_iter().next().expect("one entry");
                (k, Some(v))
            }
            Value::Object(_) => {
                return Err(de::Error::invalid_value(de::Unexpected::Map, &"map with a single key"));
            }
            other => return Err(de::Error::invalid_type(unexpected(&other), &"string or map")),
        };
        visitor.visit_enum(Variant { name, value, parent: self.path, unknown: self.unknown })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // `null` and `[]` are the field left out (Kubernetes stores neither), so nothing is
        // dropped: `envFrom: null` in rendered Helm output is no unsupported field.
        if self.value.is_null() || self.value.as_array().is_some_and(Vec::is_empty) {
            return visitor.visit_unit();
        }
        let field = match self.path {
            Path::Key(_, key) => key.to_string(),
            _ => String::new(),
        };
        self.unknown.borrow_mut().push(Unknown { path: self.path.render(), within: self.within, field });
        visitor.visit_unit()
    }

    null_as_zero! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

/// The elements of an array, each at `parent[i]`.
struct Seq<'p, 'a> {
    items: std::vec::IntoIter<Value>,
    index: usize,
    parent: &'p Node<'a>,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some(value) = self.items.next() else { return Ok(None) };
        let path = Path::Index(&self.parent.path, self.index);
        self.index += 1;
        let node = Node { value, path, within: None, unknown: self.parent.unknown };
        located(seed.deserialize(node), &path).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of an object, each value at `parent.key`; `owner` names the struct they
/// are the fields of.
struct Entries<'p, 'a> {
    entries: serde_json::map::IntoIter,
    pending: Option<(String, Value)>,
    owner: Option<&'static str>,
    parent: &'p Node<'a>,
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let decoded = seed.deserialize(key.as_str().into_deserializer());
        self.pending = Some((key, value));
        decoded.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, value) = self.pending.take().ok_or_else(|| de::Error::custom("value requested before its key"))?;
        let path = Path::Key(&self.parent.path, &key);
        let node = Node { value, path, within: self.owner, unknown: self.parent.unknown };
        located(seed.deserialize(node), &path)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum's variant: its name, and its content (at `parent.name`) unless it is a unit
/// variant.
struct Variant<'a> {
    name: String,
    value: Option<Value>,
    parent: Path<'a>,
    unknown: &'a RefCell<Vec<Unknown>>,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = Error;
    type Variant = Variant<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), Error> {
        let name = seed.deserialize(self.name.as_str().into_deserializer())?;
        Ok((name, self))
    }
}

impl Variant<'_> {
    /// Decodes the variant's content with `decode`, or fails naming what was `expected`.
    fn content<T>(self, expected: &'static str, decode: impl FnOnce(Node<'_>) -> Result<T, Error>) -> Result<T, Error> {
        let Some(value) = self.value else {
            return Err(de::Error::invalid_type(de::Unexpected::UnitVariant, &expected));
        };
        let path = Path::Key(&self.parent, &self.name);
        located(decode(Node { value, path, within: None, unknown: self.unknown }), &path)
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None => Ok(()),
            Some(_) => self.content("unit variant", |node| <() as de::Deserialize>::deserialize(node)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.content("newtype variant", |node| seed.deserialize(node))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.content("tuple variant", |node| de::Deserializer::deserialize_seq(node, visitor))
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.content("struct variant", |node| de::Deserializer::deserialize_map(node, visitor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        #[serde(default)]
        name: String,
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        shape: Option<Shape>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        count: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Mode {
        Always,
        Never,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Shape {
        Square { side: u32 },
    }

    #[test]
    fn decodes_and_lists_ignored_fields_with_their_paths() {
        let (outer, unknown) = decode::<Outer>(json!({
            "name": "a", "extra": 1,
            "items": [{"count": 1}, {"count": 2, "cont": 3}],
            "labels": {"x": "y"}, "mode": "Never", "shape": {"square": {"side": 4, "sides": 5}}
        }))
        .unwrap();
        assert_eq!(outer.items, [Inner { count: 1 }, Inner { count: 2 }]);
        assert_eq!(outer.labels["x"], "y");
        assert_eq!(outer.mode, Some(Mode::Never));
        assert_eq!(outer.shape, Some(Shape::Square { side: 4 }));
        let paths: Vec<_> = unknown.iter().map(|u| (u.path.as_str(), u.within, u.field.as_str())).collect();
        assert_eq!(
            paths,
            [
                ("extra", Some("Outer"), "extra"),
                ("items[1].cont", Some("Inner"), "cont"),
                ("shape.square.sides", None, "sides")
            ]
        );
    }

    #[test]
    fn errors_name_the_innermost_field() {
        let e = decode::<Outer>(json!({"items": [{"count": 1}, {"count": "two"}]})).unwrap_err();
        assert_eq!(e.path, "items[1].count");
        assert_eq!(e.message, "invalid type: string \"two\", expected u32");
        assert_eq!(e.to_string(), "items[1].count: invalid type: string \"two\", expected u32");

        let e = decode::<Outer>(json!({"items": [{}]})).unwrap_err();
        assert_eq!(e.to_string(), "items[0]: missing field `count`");
        let e = decode::<Outer>(json!({"mode": "Sometimes"})).unwrap_err();
        assert_eq!(e.to_string(), "mode: unknown variant `Sometimes`, expected `Always` or `Never`");
        let e = decode::<Outer>(json!({"labels": {"x": 1}})).unwrap_err();
        assert_eq!(e.to_string(), "labels.x: invalid type: integer `1`, expected a string");
        // A struct may come as an array of its fields, as serde_json allows.
        let e = decode::<Outer>(json!([1])).unwrap_err();
        assert_eq!(e.path, "[0]");
        assert_eq!(decode::<Outer>(json!(null)).unwrap_err().to_string(), "invalid type: null, expected struct Outer");
    }

    #[test]
    fn null_is_an_absent_field() {
        let (outer, unknown) =
            decode::<Outer>(json!({"name": null, "items": null, "labels": null, "mode": null, "shape": null})).unwrap();
        assert_eq!(outer, decode::<Outer>(json!({})).unwrap().0);
        assert!(unknown.is_empty());
        // Below the top a null struct is an empty one (and then its required fields missing).
        assert_eq!(
            decode::<Outer>(json!({"items": [null]})).unwrap_err().to_string(),
            "items[0]: missing field `count`"
        );
        assert_eq!(decode::<Inner>(json!({"count": null})).unwrap().0, Inner { count: 0 });
        // An unknown field left null or empty is nothing dropped.
        let (_, unknown) = decode::<Inner>(json!({"count": 1, "gone": null, "none": [], "kept": {}})).unwrap();
        assert_eq!(unknown.iter().map(|u| u.path.as_str()).collect::<Vec<_>>(), ["kept"]);
    }

    #[test]
    fn messages_match_plain_serde_json() {
        for bad in [
            json!({"name": 5}),
            json!({"items": {}}),
            json!({"mode": {"a": 1, "b": 2}}),
            json!({"mode": 3}),
            json!(null),
        ] {
            let plain = serde_json::from_value::<Outer>(bad.clone()).unwrap_err().to_string();
            let tracked = decode::<Outer>(bad).unwrap_err().message;
            assert_eq!(tracked, plain);
        }
    }
}
