//! `intstr.IntOrString`: ports and surge/unavailable budgets that are a number or a name/percentage.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i32),
    String(String),
}

impl IntOrString {
    /// Resolves a count or a percentage of `total`, rounding up or down as asked
    /// (Kubernetes' `GetScaledValueFromIntOrPercent`). A percentage too large for the result
    /// (`maxSurge: 1000000000000%`, which validation lets through as Kubernetes does) gives
    /// `i32::MAX`, never an overflow.
    pub fn scaled_value(&self, total: i32, round_up: bool) -> Result<i32, ScaleError> {
        match self {
            IntOrString::Int(v) => Ok(*v),
            IntOrString::String(s) => {
                let Some(pct) = s.strip_suffix('%') else { return Err(ScaleError::NotAPercentage(s.clone())) };
                let pct: i64 = pct.parse().map_err(|_| ScaleError::BadPercentage(s.clone()))?;
                // i64 × i32 always fits an i128, and so does the rounding.
                let scaled = i128::from(pct) * i128::from(total);
                let v = if round_up { (scaled + 99).div_euclid(100) } else { scaled.div_euclid(100) };
                Ok(v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32)
            }
        }
    }
}

/// Why a count-or-percentage could not be scaled, in Kubernetes' words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleError {
    /// A string without `%`.
    NotAPercentage(String),
    /// `N%` where N is not an integer that fits 64 bits.
    BadPercentage(String),
}

impl fmt::Display for ScaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleError::NotAPercentage(s) => {
                write!(f, "invalid value for IntOrString: invalid type: string is not a percentage: {s:?}")
            }
            ScaleError::BadPercentage(s) => write!(f, "invalid value for IntOrString: invalid value {s:?}"),
        }
    }
}

impl std::error::Error for ScaleError {}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(v) => write!(f, "{v}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl From<i32> for IntOrString {
    fn from(v: i32) -> Self {
        IntOrString::Int(v)
    }
}

impl From<&str> for IntOrString {
    fn from(v: &str) -> Self {
        IntOrString::String(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_kubernetes() {
        let p = IntOrString::from("25%");
        assert_eq!(p.scaled_value(10, true).unwrap(), 3);
        assert_eq!(p.scaled_value(10, false).unwrap(), 2);
        assert_eq!(IntOrString::Int(4).scaled_value(10, false).unwrap(), 4);
        assert!(IntOrString::from("x").scaled_value(10, true).is_err());
        let huge = IntOrString::from("9223372036854775807%");
        assert_eq!(huge.scaled_value(i32::MAX, true).unwrap(), i32::MAX);
        assert_eq!(huge.scaled_value(i32::MIN, false).unwrap(), i32::MIN);
        assert!(IntOrString::from("9223372036854775808%").scaled_value(1, true).is_err());
    }

    #[test]
    fn parses_both_shapes() {
        let v: IntOrString = serde_json::from_str("8080").unwrap();
        assert_eq!(v, IntOrString::Int(8080));
        let v: IntOrString = serde_json::from_str("\"http\"").unwrap();
        assert_eq!(v, IntOrString::String("http".into()));
    }
}
