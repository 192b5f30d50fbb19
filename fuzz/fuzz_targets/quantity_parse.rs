//! Arbitrary text into the quantity parser: no panics, and every accepted quantity prints
//! a form that parses back to the same value. As in Kubernetes, a binary amount that is not
//! a whole number of Ki prints as plain digits (`312.5Ki` → `320000`), which then reads as
//! decimal (`320k`); from there printing is a fixed point.
#![no_main]

use coracle_config::Quantity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(q) = Quantity::parse(text) else { return };
    let printed = q.to_string();
    let again = Quantity::parse(&printed).unwrap_or_else(|e| panic!("{text:?} printed {printed:?}: {e}"));
    assert_eq!(again, q, "{text:?} -> {printed:?}");
    let settled = again.to_string();
    let third = Quantity::parse(&settled).expect("a printed quantity parses").to_string();
    assert_eq!(third, settled, "{text:?}: printing does not settle");
    let _ = (q.value(), q.milli_value());
});
