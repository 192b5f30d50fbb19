//! Sizes as podman prints them: go-units' `HumanSizeWithPrecision(size, 3)`, decimal units
//! with three significant digits (`1.23 MB`, `999 B`, `12.3 kB`).

const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `bytes` in podman's `SIZE` column.
pub fn human_size(bytes: u64) -> String {
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{} {}", go_g3(size), UNITS[unit])
}

/// Go's `%.3g`: three significant digits, trailing zeros dropped, exponent form when the
/// exponent is below -4 or at least 3.
fn go_g3(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    // Round to three significant digits first: the exponent is the rounded value's.
    let sci = format!("{x:.2e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponents are integers");
    if !(-4..3).contains(&exp) {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (2 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_podman() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1000), "1 kB");
        assert_eq!(human_size(12_345), "12.3 kB");
        assert_eq!(human_size(1_200_000), "1.2 MB");
        assert_eq!(human_size(1_234_567), "1.23 MB");
        assert_eq!(human_size(123_456_789), "123 MB");
        assert_eq!(human_size(4_300_000_000), "4.3 GB");
        // Go rounds 999.6 to 1e+03 under %.3g rather than carrying into the next unit.
        assert_eq!(human_size(999_600), "1e+03 kB");
    }
}
