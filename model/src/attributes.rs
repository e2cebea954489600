//! Agent attributes: `rack:r1;zone:a;level:3;ports:[1-2];colors:{a,b}`.
//! Values are text, scalar, ranges or set; constraints compare them as strings.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{ModelError, ParseError};
use crate::parse::{Cursor, RawValue};
use crate::ranges::Ranges;
use crate::scalar::Scalar;

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeValue {
    /// Free text.
    Text(String),
    /// A number (three decimals).
    Scalar(Scalar),
    /// Integer ranges.
    Ranges(Ranges),
    /// A set of strings.
    Set(BTreeSet<String>),
}

impl fmt::Display for AttributeValue {
    /// The string form used by constraint matching (as Marathon formats them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Text(t) => f.write_str(t),
            AttributeValue::Scalar(s) => write!(f, "{s}"),
            AttributeValue::Ranges(r) => write!(f, "{r}"),
            AttributeValue::Set(s) => {
                f.write_str("{")?;
                for (i, x) in s.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(x)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Value.
    pub value: AttributeValue,
}

/// An agent's attributes, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(pub BTreeMap<String, AttributeValue>);

impl Attributes {
    /// Parses the Mesos text form. A value is ranges if it is `[..]`, a set if
    /// `{..}`, a scalar if it is a number, else text.
    pub fn parse(text: &str) -> Result<Attributes, ModelError> {
        let mut c = Cursor::new(text);
        let mut out = BTreeMap::new();
        c.skip_ws();
        if c.at_end() {
            return Ok(Attributes(out));
        }
        loop {
            let (p, name) = c.take_until(&[':', ';']);
            if name.is_empty() {
                return Err(ParseError::new(p, "expected an attribute name").into());
            }
            c.expect(':', &format!("after attribute name {name:?}"))?;
            let vp = c.pos;
            let value = match c.value()? {
                RawValue::Number(v, raw) => match Scalar::from_f64(v) {
                    Ok(s) => AttributeValue::Scalar(s),
                    Err(_) => AttributeValue::Text(raw),
                },
                RawValue::Ranges(r) => AttributeValue::Ranges(r),
                RawValue::Set(s) => AttributeValue::Set(s),
                RawValue::Text(t) => AttributeValue::Text(t),
            };
            if out.insert(name.to_string(), value).is_some() {
                return Err(ParseError::new(vp, format!("attribute {name:?} given twice")).into());
            }
            if !c.separator()? {
                break;
            }
        }
        Ok(Attributes(out))
    }

    /// Value of an attribute as a string, if present.
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.0.get(name).map(ToString::to_string)
    }
}

impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}:{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_value_types() {
        let a = Attributes::parse("rack:r1;zone:a;level:3;ports:[1-2];colors:{b,a}").unwrap();
        assert_eq!(a.0["rack"], AttributeValue::Text("r1".into()));
        assert_eq!(a.0["level"], AttributeValue::Scalar(Scalar::from_units(3)));
        assert_eq!(a.0["ports"], AttributeValue::Ranges(Ranges::single(1, 2)));
        assert_eq!(a.get_str("colors").unwrap(), "{a,b}");
        assert_eq!(Attributes::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn malformed_attributes_are_rejected_with_position() {
        assert!(
            Attributes::parse("rack")
                .unwrap_err()
                .to_string()
                .contains("at byte 4")
        );
        assert!(
            Attributes::parse("rack:r1;rack:r2")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(Attributes::parse("p:[1-").is_err());
    }
}
