//! The text of a log line as one shared allocation (benchmark finding 6).
//!
//! A line is decoded once, by the pipe reader, into a [`LogText`]; from then on the ring,
//! the LogBuffer's file writer and every subscriber hold the same `Arc<str>`. Before, the
//! text was allocated three times per line (the decoder's `String`, the ring's copy and a
//! `String` per subscriber), which made `malloc`/`free` the largest item of a log flood's
//! profile. The type reads like a `&str`, compares with strings and serialises as a plain
//! JSON string, so the API's `LogLine` looks the same on the wire.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text of a log line, shared: cloning it copies a pointer, not the text. Reads like a
/// `&str` (through `Deref`), compares with strings, and serialises as a JSON string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogText(Arc<str>);

impl LogText {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for LogText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LogText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LogText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for LogText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for LogText {
    fn from(text: &str) -> Self {
        LogText(Arc::from(text))
    }
}

impl From<String> for LogText {
    fn from(text: String) -> Self {
        LogText(Arc::from(text))
    }
}

impl From<LogText> for String {
    fn from(text: LogText) -> Self {
        text.0.to_string()
    }
}

impl PartialEq<str> for LogText {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for LogText {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for LogText {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<LogText> for str {
    fn eq(&self, other: &LogText) -> bool {
        self == &*other.0
    }
}

impl PartialEq<LogText> for &str {
    fn eq(&self, other: &LogText) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<LogText> for String {
    fn eq(&self, other: &LogText) -> bool {
        **self == *other.0
    }
}

impl Serialize for LogText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LogText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(LogText::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_text() {
        let text = LogText::from("hello");
        let copy = text.clone();
        assert!(std::ptr::eq(text.as_str(), copy.as_str()));
        assert_eq!(copy, "hello");
        assert_eq!("hello", copy);
        assert_eq!(copy, "hello".to_string());
        assert_eq!(format!("{copy} {copy:?}"), "hello \"hello\"");
    }

    #[test]
    fn serialises_as_a_plain_string() {
        let text = LogText::from("a \"quoted\" line");
        let json = serde_json::to_string(&text).expect("serialise");
        assert_eq!(json, r#""a \"quoted\" line""#);
        let back: LogText = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, text);
    }
}
