//! What every body and query string must be before any handler sees it: JSON whose objects
//! name each key once, and text without control characters (API.md, Conventions).
//!
//! Both are checked here, at the edge, so no backend ever sees such input: PostgreSQL refuses a
//! NUL byte in a string (a 500 before this check) while SQLite stores it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Fields whose text may hold tabs and line breaks (free text typed by a person).
const MULTILINE_FIELDS: [&str; 2] = ["description", "note"];

/// The reason given for a string holding control characters.
pub const CONTROL_CHARACTERS: &str = "must not contain control characters";

/// Parses JSON, refusing an object that repeats a key (serde_json would keep the last one and
/// so let `{"price_cents": 1, "price_cents": 100}` mean what a proxy that read the first did not).
pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(bytes).map(|s| s.0)
}

/// A JSON value parsed with [`StrictVisitor`].
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("a number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
        Strict::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                // The same words serde's derive uses, so the field is named in the answer.
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Strict(Value::Object(object)))
    }
}

/// True when `c` is a control character the contract refuses (U+0000..U+001F, U+007F), given
/// whether the field is free text that may hold tabs and line breaks.
fn refused(c: char, multiline: bool) -> bool {
    match c {
        '\t' | '\n' | '\r' => !multiline,
        c => c.is_ascii_control(),
    }
}

/// True when `text` holds a control character outside free text.
pub fn has_control(text: &str) -> bool {
    text.chars().any(|c| refused(c, false))
}

/// Refuses (400 naming the field, e.g. `address.line1` or `items[2].product_id`) any string in
/// `value`, key or value, holding a control character; tabs and line breaks pass in
/// `description` and `note`.
pub fn check_text(value: &Value) -> Result<(), ApiError> {
    let mut path = String::new();
    walk(value, &mut path, false)
}

fn walk(value: &Value, path: &mut String, multiline: bool) -> Result<(), ApiError> {
    match value {
        Value::String(s) if s.chars().any(|c| refused(c, multiline)) => {
            let field = if path.is_empty() { "body" } else { path };
            Err(ApiError::invalid_field(field, CONTROL_CHARACTERS))
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, multiline)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                if has_control(key) {
                    let field = if path.is_empty() { "body" } else { path };
                    return Err(ApiError::invalid_field(
                        field,
                        "a key must not contain control characters",
                    ));
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk(item, path, MULTILINE_FIELDS.contains(&key.as_str()))?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        assert!(parse(br#"{"a": 1, "b": {"c": 2}}"#).is_ok());
        let err = parse(br#"{"price_cents": 1, "price_cents": 100}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate field `price_cents`"));
        assert!(parse(br#"{"address": {"city": "a", "city": "b"}}"#).is_err());
        assert!(parse(br#"{"items": [{"q": 1, "q": 2}]}"#).is_err());
        // The same key in two different objects is fine.
        assert!(parse(br#"[{"q": 1}, {"q": 2}]"#).is_ok());
    }

    #[test]
    fn strict_parsing_keeps_every_value_as_serde_json_reads_it() {
        let text = br#"{"s": "x\u00e9", "n": -3, "u": 18446744073709551615, "f": 1.5,
            "b": true, "z": null, "a": [1, [2]], "o": {}}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert!(parse(b"{\"a\": 1").is_err());
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        let field_of = |v: Value| {
            let err = check_text(&v).unwrap_err();
            assert_eq!(err.code, "invalid_request");
            let fields = err.details["fields"].as_object().unwrap().clone();
            assert_eq!(fields.len(), 1);
            fields.keys().next().unwrap().clone()
        };
        assert_eq!(field_of(json!({"email": "a\u{0}@b.co"})), "email");
        assert_eq!(
            field_of(json!({"address": {"line1": "x\ty"}})),
            "address.line1"
        );
        assert_eq!(
            field_of(json!({"items": [{"product_id": "1"}, {"product_id": "2\u{7f}"}]})),
            "items[1].product_id"
        );
        assert_eq!(
            field_of(json!({"categories": ["ok", "b\u{1b}"]})),
            "categories[1]"
        );
        assert_eq!(field_of(json!({"bad\u{0}key": 1})), "body");
        assert_eq!(field_of(json!("\u{1}")), "body");
    }

    #[test]
    fn free_text_may_hold_tabs_and_line_breaks_but_nothing_else() {
        assert!(check_text(&json!({"description": "a\tb\r\nc", "note": "x\ny"})).is_ok());
        assert!(check_text(&json!({"description": "a\u{0}b"})).is_err());
        assert!(check_text(&json!({"note": "\u{7f}"})).is_err());
        assert!(check_text(&json!({"name": "a\nb"})).is_err());
        // Other Unicode, including non-ASCII whitespace, is text.
        assert!(check_text(&json!({"name": "Zoë 商品\u{a0}\u{2028}"})).is_ok());
    }

    #[test]
    fn has_control_is_the_query_string_rule() {
        assert!(has_control("a\u{0}"));
        assert!(has_control("a\tb"));
        assert!(!has_control("plain text, ünïcode"));
    }
}
