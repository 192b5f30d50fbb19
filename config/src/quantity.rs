//! `resource.Quantity`: CPU and memory amounts (`100m`, `0.5`, `128Mi`, `1G`, `2e3`).
//!
//! A quantity is held exactly as a count of nano-units plus the notation it was written in,
//! which decides how it prints: `BinarySI` (`Ki`…`Ei`), `DecimalSI` (`n`…`E`) or
//! `DecimalExponent` (`2e3`). Parsing follows apimachinery's `ParseQuantity`: precision
//! below one nano-unit rounds up (asking for a little gives a little, never zero). Amounts
//! beyond ±(2^63-1) units are refused, naming the value: apimachinery carries big decimal
//! amounts in arbitrary precision, which nothing on one board needs, and silently caps binary
//! ones at 2^63-1 (`99999999999999999999Ei` became 8Ei), which would store what nobody wrote.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// The largest magnitude kept, in nano-units: `i64::MAX` whole units.
const MAX_NANOS: i128 = i64::MAX as i128 * NANOS_PER_UNIT;

/// How a quantity was written, and so how it prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Powers of 1024: `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`.
    BinarySI,
    /// Powers of 1000: `n`, `u`, `m`, none, `k`, `M`, `G`, `T`, `P`, `E`.
    #[default]
    DecimalSI,
    /// Scientific notation: `2e3`, `1E-3`.
    DecimalExponent,
}

/// An amount of a resource, compared and hashed by value (`1000m == 1`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// A string that is not a quantity; the message names the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError {
    pub value: String,
    pub reason: &'static str,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid quantity {:?}: {}", self.value, self.reason)
    }
}

impl std::error::Error for QuantityError {}

/// apimachinery's `ErrFormatWrong` wording.
const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const SUFFIX: &str = "unable to parse quantity's suffix";
const TOO_LARGE: &str = "quantity is too large (the limit is 9223372036854775807 units)";

impl Quantity {
    /// Parses a quantity as Kubernetes does (no surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let fail = |reason| QuantityError { value: text.to_string(), reason };
        let parts = split(text).ok_or_else(|| fail(FORMAT_WRONG))?;
        let (base, exponent, mut format) = interpret_suffix(parts.suffix).ok_or_else(|| fail(SUFFIX))?;

        let mut digits: Vec<u8> = parts.whole.bytes().chain(parts.fraction.bytes()).map(|b| b - b'0').collect();
        // The value is digits × 10^shift nano-units, once any binary factor is folded in.
        let mut shift: i64 = 9 - parts.fraction.len() as i64;
        if base == 2 {
            for _ in 0..exponent {
                double(&mut digits);
            }
        } else {
            shift += exponent;
        }
        let magnitude = match nanos_from_digits(&digits, shift) {
            Some(n) if n <= MAX_NANOS => n,
            _ => return Err(fail(TOO_LARGE)),
        };
        if format == Format::BinarySI && magnitude > 0 && magnitude < NANOS_PER_UNIT {
            format = Format::DecimalSI;
        }
        Ok(Quantity { nanos: if parts.negative { -magnitude } else { magnitude }, format })
    }

    /// `n` thousandths of a unit (CPU millicores), printed in decimal notation.
    pub fn from_milli(n: i64) -> Quantity {
        Quantity { nanos: n as i128 * 1_000_000, format: Format::DecimalSI }
    }

    /// `n` whole units in the given notation (`from_value(134217728, Format::BinarySI)` prints `128Mi`).
    pub fn from_value(n: i64, format: Format) -> Quantity {
        Quantity { nanos: n as i128 * NANOS_PER_UNIT, format }
    }

    /// Whole units (bytes, cores), rounded up away from zero.
    pub fn value(&self) -> i64 {
        scaled_up(self.nanos, NANOS_PER_UNIT)
    }

    /// Thousandths of a unit (CPU millicores), rounded up away from zero.
    pub fn milli_value(&self) -> i64 {
        scaled_up(self.nanos, 1_000_000)
    }

    /// The amount as a float, for ratios such as CPU utilization.
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANOS_PER_UNIT as f64
    }

    /// The notation this quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// True for any spelling of zero (`0`, `0Mi`, `-0`).
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// True below zero, which no resource amount may be.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }
}

/// `nanos / per`, rounded away from zero, saturating at the i64 range.
fn scaled_up(nanos: i128, per: i128) -> i64 {
    let q = nanos / per;
    let q = if nanos % per != 0 { q + nanos.signum() } else { q };
    q.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The pieces of a quantity string, as apimachinery's `parseQuantityString` splits it.
struct Parts<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
    suffix: &'a str,
}

fn split(text: &str) -> Option<Parts<'_>> {
    let b = text.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut pos = 0;
    let mut negative = false;
    match b[0] {
        b'-' => {
            negative = true;
            pos = 1
        }
        b'+' => pos = 1,
        _ => {}
    }
    let whole_start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let whole = &text[whole_start..pos];
    let mut fraction = "";
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        fraction = &text[start..pos];
    } else if whole.is_empty() {
        // A bare sign, or letters with no number before them.
        return None;
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != b.len() {
        return None;
    }
    Some(Parts {
        negative,
        whole: whole.trim_start_matches('0'),
        fraction: fraction.trim_end_matches('0'),
        suffix: &text[suffix_start..],
    })
}

/// (base, exponent, format) for a suffix, as apimachinery's `suffixHandler.interpret`.
fn interpret_suffix(suffix: &str) -> Option<(u32, i64, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i32 = s[1..].parse().ok()?;
            Some((10, e as i64, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Doubles a big-endian decimal digit string in place.
fn double(digits: &mut Vec<u8>) {
    let mut carry = 0;
    for d in digits.iter_mut().rev() {
        let v = *d * 2 + carry;
        *d = v % 10;
        carry = v / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

/// `digits × 10^shift`, rounded up to a whole nano-unit; None when it exceeds i128.
fn nanos_from_digits(digits: &[u8], shift: i64) -> Option<i128> {
    let first = digits.iter().position(|&d| d != 0);
    let Some(first) = first else { return Some(0) };
    let digits = &digits[first..];
    let (kept, dropped) = if shift >= 0 {
        (digits, &[][..])
    } else {
        let cut = digits.len().saturating_sub(shift.unsigned_abs().min(usize::MAX as u64) as usize);
        digits.split_at(cut)
    };
    let mut n: i128 = 0;
    for &d in kept {
        n = n.checked_mul(10)?.checked_add(d as i128)?;
    }
    if shift > 0 {
        n = n.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
    }
    if dropped.iter().any(|&d| d != 0) {
        n += 1;
    }
    Some(n)
}

impl fmt::Display for Quantity {
    /// The canonical form, as apimachinery's `CanonicalizeBytes` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let whole = self.nanos % NANOS_PER_UNIT == 0;
        let binary = self.format == Format::BinarySI && self.nanos.abs() >= 1024 * NANOS_PER_UNIT && whole;
        if binary {
            let (mut amount, mut times) = (self.nanos / NANOS_PER_UNIT, 0);
            while amount.abs() >= 1024 && amount % 1024 == 0 {
                amount /= 1024;
                times += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][times];
            return write!(f, "{amount}{suffix}");
        }
        let (mut amount, mut exponent) = (self.nanos, -9i32);
        while amount.abs() >= 10 && amount % 10 == 0 {
            amount /= 10;
            exponent += 1;
        }
        // Go's `%` keeps the dividend's sign, hence the negative arms.
        match exponent % 3 {
            1 | -2 => {
                amount *= 10;
                exponent -= 1;
            }
            2 | -1 => {
                amount *= 100;
                exponent -= 2;
            }
            _ => {}
        }
        if self.format == Format::DecimalExponent {
            return if exponent == 0 { write!(f, "{amount}") } else { write!(f, "{amount}e{exponent}") };
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        write!(f, "{amount}{suffix}")
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        d.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a quantity such as \"100m\", \"128Mi\" or 2")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        // apimachinery's UnmarshalJSON trims whitespace inside the quotes.
        Quantity::parse(v.trim()).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        Ok(Quantity::from_value(v, Format::DecimalSI))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
        self.visit_str(&v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_string()
    }

    #[test]
    fn prints_canonical_forms_as_kubernetes() {
        let table = [
            ("100m", "100m"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("128Mi", "128Mi"),
            ("1.5Gi", "1536Mi"),
            ("1024Mi", "1Gi"),
            ("1G", "1G"),
            ("1000M", "1G"),
            ("2e3", "2e3"),
            ("1E-3", "1e-3"),
            ("80e-3", "80e-3"),
            ("300e6", "300e6"),
            ("1e0", "1"),
            ("50k", "50k"),
            ("40T", "40T"),
            ("100.035k", "100035"),
            ("0.001", "1m"),
            ("0.0005k", "500m"),
            ("1.08", "1080m"),
            ("1025Ki", "1025Ki"),
            ("5Ki", "5Ki"),
            ("1023", "1023"),
            ("0.5Ki", "512"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("0.0000000001", "1n"),
            ("0", "0"),
            ("0Mi", "0"),
            ("-0", "0"),
            ("00100m", "100m"),
            ("1.", "1"),
            (".5", "500m"),
            ("+1.5", "1500m"),
            ("-1.5", "-1500m"),
            ("-128Mi", "-128Mi"),
            ("1E", "1E"),
            ("7Ei", "7Ei"),
            ("9223372036854775807", "9223372036854775807"),
            ("1234567M", "1234567M"),
            ("9.01", "9010m"),
        ];
        for (input, want) in table {
            assert_eq!(canon(input), want, "{input}");
            // The canonical form is a fixed point.
            assert_eq!(canon(want), want, "{want}");
        }
        // Binary amounts that are no whole number of Ki print as plain digits, which read
        // back as decimal: Kubernetes does the same.
        assert_eq!(canon("312.5Ki"), "320000");
        assert_eq!(canon("320000"), "320k");
    }

    #[test]
    fn rejects_what_kubernetes_rejects_naming_the_value() {
        for bad in [
            "", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1", "1 ", "-", "+",
            "1e", "1K", "1kk", "m", "1e3m", "10Qi",
        ] {
            let err = Quantity::parse(bad).expect_err(bad);
            assert!(err.to_string().starts_with(&format!("invalid quantity {bad:?}: ")), "{err}");
        }
        // Beyond 2^63-1 units, decimal or binary: refused rather than capped.
        for big in ["1e30", "9223372036854775808", "8Ei", "16Ei", "99999999999999999999Ei", "-8Ei", "1e2147483647"] {
            assert_eq!(Quantity::parse(big).unwrap_err().reason, TOO_LARGE, "{big}");
        }
    }

    #[test]
    fn values_round_up() {
        let q = Quantity::parse("100m").unwrap();
        assert_eq!(q.milli_value(), 100);
        assert_eq!(q.value(), 1);
        assert_eq!(Quantity::parse("1.5Gi").unwrap().value(), 1_610_612_736);
        assert_eq!(Quantity::parse("0.1m").unwrap().milli_value(), 1);
        assert_eq!(Quantity::parse("2").unwrap().milli_value(), 2000);
        assert_eq!(Quantity::parse("-1.5").unwrap().value(), -2);
        assert_eq!(Quantity::from_milli(250).to_string(), "250m");
        assert_eq!(Quantity::from_milli(2000).to_string(), "2");
        assert_eq!(Quantity::from_value(134_217_728, Format::BinarySI).to_string(), "128Mi");
        assert_eq!(Quantity::from_value(1000, Format::BinarySI).to_string(), "1k");
    }

    #[test]
    fn compares_by_value() {
        let q = |s| Quantity::parse(s).unwrap();
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("500m") < q("1"));
        assert!(q("1Gi") > q("1G"));
    }

    #[test]
    fn serde_uses_strings_and_accepts_numbers() {
        let q: Quantity = serde_json::from_str("\"0.5\"").unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"500m\"");
        let q: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(q.to_string(), "2");
        let q: Quantity = serde_json::from_str("0.25").unwrap();
        assert_eq!(q.to_string(), "250m");
        let q: Quantity = serde_json::from_str("\" 1 \"").unwrap();
        assert_eq!(q.to_string(), "1");
        let err = serde_json::from_str::<Quantity>("\"12x\"").unwrap_err().to_string();
        assert!(err.contains("invalid quantity \"12x\""), "{err}");
    }
}
