//! A small cursor parser shared by the resource and attribute text forms, so
//! both report errors with the same byte positions.
use std::collections::BTreeSet;

use crate::error::ParseError;
use crate::ranges::Ranges;

pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
}

/// A parsed value before it is typed as a resource or attribute.
pub(crate) enum RawValue {
    Number(f64, String),
    Ranges(Ranges),
    Set(BTreeSet<String>),
    Text(String),
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }
    pub(crate) fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError::new(self.pos, reason)
    }
    pub(crate) fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }
    pub(crate) fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    pub(crate) fn expect(&mut self, c: char, what: &str) -> Result<(), ParseError> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            match self.peek() {
                Some(found) => Err(self.err(format!("expected '{c}' {what}, found '{found}'"))),
                None => Err(self.err(format!("expected '{c}' {what}, found end of input"))),
            }
        }
    }
    /// Reads up to (not including) any of `stops`, trimmed.
    pub(crate) fn take_until(&mut self, stops: &[char]) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if stops.contains(&c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        (start, self.s[start..self.pos].trim_end())
    }

    /// Parses `[a-b, c-d]` (the cursor is on '[').
    pub(crate) fn ranges(&mut self) -> Result<Ranges, ParseError> {
        self.expect('[', "to open ranges")?;
        let mut pairs = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(']') {
                break;
            }
            let (p, b) = self.take_until(&['-', ',', ']']);
            let begin: u64 = b.parse().map_err(|_| {
                ParseError::new(p, format!("range begin {b:?} is not an unsigned integer"))
            })?;
            self.expect('-', "between range begin and end")?;
            let (p, e) = self.take_until(&[',', ']']);
            let end: u64 = e.parse().map_err(|_| {
                ParseError::new(p, format!("range end {e:?} is not an unsigned integer"))
            })?;
            if end < begin {
                return Err(ParseError::new(
                    p,
                    format!("range end {end} is below begin {begin}"),
                ));
            }
            pairs.push((begin, end));
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            self.expect(']', "to close ranges")?;
            break;
        }
        Ok(Ranges::from_pairs(pairs))
    }

    /// Parses `{a, b}` (the cursor is on '{').
    pub(crate) fn set(&mut self) -> Result<BTreeSet<String>, ParseError> {
        self.expect('{', "to open a set")?;
        let mut items = BTreeSet::new();
        loop {
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            let (p, item) = self.take_until(&[',', '}']);
            if item.is_empty() {
                return Err(ParseError::new(p, "empty set item"));
            }
            items.insert(item.to_string());
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            self.expect('}', "to close a set")?;
            break;
        }
        Ok(items)
    }

    /// Parses a value up to `;` or the end: ranges, set, number or text.
    pub(crate) fn value(&mut self) -> Result<RawValue, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some('[') => Ok(RawValue::Ranges(self.ranges()?)),
            Some('{') => Ok(RawValue::Set(self.set()?)),
            None => Err(self.err("expected a value, found end of input")),
            Some(_) => {
                let (p, t) = self.take_until(&[';']);
                if t.is_empty() {
                    return Err(ParseError::new(p, "expected a value"));
                }
                match t.parse::<f64>() {
                    Ok(v)
                        if t.chars().all(|c| {
                            c.is_ascii_digit()
                                || c == '.'
                                || c == '-'
                                || c == '+'
                                || c == 'e'
                                || c == 'E'
                        }) =>
                    {
                        Ok(RawValue::Number(v, t.to_string()))
                    }
                    _ => Ok(RawValue::Text(t.to_string())),
                }
            }
        }
    }

    /// After a value: either end of input or ';' followed by more.
    pub(crate) fn separator(&mut self) -> Result<bool, ParseError> {
        self.skip_ws();
        if self.at_end() {
            return Ok(false);
        }
        if self.eat(';') {
            self.skip_ws();
            return Ok(!self.at_end());
        }
        Err(self.err(format!(
            "expected ';' or end of input, found '{}'",
            self.peek().unwrap_or(' ')
        )))
    }
}
