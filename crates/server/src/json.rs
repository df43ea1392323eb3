//! The JSON the AdminServer writes: a small value type that keeps keys in
//! the order they are added, printed the way ZooKeeper's Jackson
//! `DefaultPrettyPrinter` prints (`"key" : value`, two spaces per object
//! level, arrays inline as `[ a, b ]`, empty ones as `[ ]` and `{ }`), with
//! doubles as Java prints them.

use crate::stats::java_double;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON object whose keys keep their insertion order; a key added again
/// replaces its value in place (as a `LinkedHashMap`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object(Vec<(String, Json)>);

impl Object {
    pub fn new() -> Object {
        Object::default()
    }

    pub fn put(&mut self, key: impl Into<String>, value: impl Into<Json>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<Json>) -> Object {
        self.put(key, value);
        self
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

impl From<Object> for Json {
    fn from(o: Object) -> Json {
        Json::Object(o)
    }
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}

impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_string())
    }
}

impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}

impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Float(v)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Json {
            fn from(v: $t) -> Json {
                Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
    )*};
}
from_int!(i32, i64, u16, u32, u64, usize);

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(v: Vec<T>) -> Json {
        Json::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

impl Json {
    /// The text Jackson's default pretty printer writes.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, level: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Json::Float(v) if v.is_finite() => out.push_str(&java_double(*v)),
            // Jackson writes non-finite doubles as strings.
            Json::Float(v) => write_str(out, &java_double(*v)),
            Json::Str(s) => write_str(out, s),
            Json::Array(items) => {
                if items.is_empty() {
                    out.push_str("[ ]");
                    return;
                }
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, level);
                }
                out.push_str(" ]");
            }
            Json::Object(o) => {
                if o.0.is_empty() {
                    out.push_str("{ }");
                    return;
                }
                out.push('{');
                for (i, (k, v)) in o.0.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('\n');
                    indent(out, level + 1);
                    write_str(out, k);
                    out.push_str(" : ");
                    v.write(out, level + 1);
                }
                out.push('\n');
                indent(out, level);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_jacksons_default_pretty_printer() {
        let conn = Object::new()
            .with("remote_socket_address", "127.0.0.1:39138")
            .with("interest_ops", 1);
        let doc = Object::new()
            .with("connections", vec![Json::from(conn.clone()), conn.into()])
            .with("secure_connections", Vec::<Json>::new())
            .with("current_config", Object::new())
            .with("ids", vec![1i64, 2])
            .with("avg_latency", 0.0)
            .with("command", "connections")
            .with("error", Json::Null);
        assert_eq!(
            Json::from(doc).pretty(),
            "{\n  \"connections\" : [ {\n    \"remote_socket_address\" : \"127.0.0.1:39138\",\n    \
             \"interest_ops\" : 1\n  }, {\n    \"remote_socket_address\" : \"127.0.0.1:39138\",\n    \
             \"interest_ops\" : 1\n  } ],\n  \"secure_connections\" : [ ],\n  \"current_config\" : { },\n  \
             \"ids\" : [ 1, 2 ],\n  \"avg_latency\" : 0.0,\n  \"command\" : \"connections\",\n  \
             \"error\" : null\n}"
        );
    }

    #[test]
    fn strings_are_escaped_and_keys_replaced_in_place() {
        let mut o = Object::new().with("a", 1).with("b", "x\n\"y\"\u{1}");
        o.put("a", 2);
        assert_eq!(
            Json::from(o).pretty(),
            "{\n  \"a\" : 2,\n  \"b\" : \"x\\n\\\"y\\\"\\u0001\"\n}"
        );
    }
}
