//! Fixed-point scalars with three decimals, as Mesos rounds them, so sums and
//! differences never drift the way floats do.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, AddAssign};

use crate::error::ModelError;

/// A non-negative quantity in thousandths (`Scalar::from_milli(1500)` = 1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Scalar(i64);

/// The largest scalar we accept: about 9.2e12 units, far above any real
/// machine (mem is in MB), and small enough that sums of 10^6 agents cannot
/// overflow i64 thousandths.
pub const MAX_SCALAR_MILLI: i64 = i64::MAX / 1_000_000;

impl Scalar {
    /// Zero.
    pub const ZERO: Scalar = Scalar(0);

    /// From thousandths.
    pub const fn from_milli(m: i64) -> Scalar {
        Scalar(m)
    }
    /// From whole units.
    pub const fn from_units(u: i64) -> Scalar {
        Scalar(u * 1000)
    }
    /// From a float, rounded to the nearest thousandth; rejects NaN,
    /// infinities, negatives and absurdly large values.
    pub fn from_f64(v: f64) -> Result<Scalar, ModelError> {
        if !v.is_finite() {
            return Err(ModelError::invalid(
                "scalar",
                format!("{v} is not a finite number"),
            ));
        }
        if v < 0.0 {
            return Err(ModelError::invalid("scalar", format!("{v} is negative")));
        }
        let m = (v * 1000.0).round();
        if m > MAX_SCALAR_MILLI as f64 {
            return Err(ModelError::invalid("scalar", format!("{v} is too large")));
        }
        Ok(Scalar(m as i64))
    }
    /// Thousandths.
    pub const fn milli(self) -> i64 {
        self.0
    }
    /// As a float (for display, shares and the wire).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    /// Is this zero?
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// Subtraction that stops at zero: resources never go negative.
    pub fn saturating_sub(self, rhs: Scalar) -> Scalar {
        Scalar((self.0 - rhs.0).max(0))
    }
    /// Addition that stops at the maximum instead of overflowing.
    pub fn saturating_add(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(rhs.0))
    }
    /// True if this is a whole number of units.
    pub fn is_whole(self) -> bool {
        self.0 % 1000 == 0
    }
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, rhs: Scalar) -> Scalar {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Scalar {
    fn add_assign(&mut self, rhs: Scalar) {
        *self = *self + rhs;
    }
}

impl fmt::Display for Scalar {
    /// Prints without trailing zeros: `4`, `0.5`, `1.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1000;
        let frac = self.0 % 1000;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let s = format!("{frac:03}");
            write!(f, "{whole}.{}", s.trim_end_matches('0'))
        }
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Scalar::from_f64(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_three_decimals_like_mesos() {
        assert_eq!(Scalar::from_f64(1.5123).unwrap(), Scalar::from_milli(1512));
        assert_eq!(
            Scalar::from_f64(0.1).unwrap() + Scalar::from_f64(0.2).unwrap(),
            Scalar::from_f64(0.3).unwrap()
        );
        assert!(Scalar::from_f64(-1.0).is_err());
        assert!(Scalar::from_f64(f64::NAN).is_err());
        assert!(Scalar::from_f64(f64::INFINITY).is_err());
    }

    #[test]
    fn prints_without_trailing_zeros() {
        assert_eq!(Scalar::from_milli(4000).to_string(), "4");
        assert_eq!(Scalar::from_milli(500).to_string(), "0.5");
        assert_eq!(Scalar::from_milli(1125).to_string(), "1.125");
        assert_eq!(Scalar::from_milli(10).to_string(), "0.01");
    }
}
