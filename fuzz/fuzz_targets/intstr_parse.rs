//! Arbitrary JSON into `IntOrString` (ports, surge and unavailable budgets): no panics,
//! a JSON round trip keeps the value, and scaling a percentage never overflows.
#![no_main]

use coracle_config::IntOrString;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(v) = serde_json::from_str::<IntOrString>(text) else { return };
    let json = serde_json::to_string(&v).expect("IntOrString serializes");
    assert_eq!(serde_json::from_str::<IntOrString>(&json).expect("printed form parses"), v);
    // The first byte picks the total and the rounding, corners included.
    let total = [0, 1, 10, 100, i32::MAX, i32::MIN, -1][usize::from(first % 7)];
    let _ = v.scaled_value(total, first & 0x80 != 0);
});
