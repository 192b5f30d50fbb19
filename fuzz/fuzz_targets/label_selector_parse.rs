//! Arbitrary text into the label selector parser (`-l`, `?labelSelector=`): no panics, and
//! every accepted selector prints a query that parses back to the same selector.
#![no_main]

use coracle_config::label_selector::Selector;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sel) = Selector::parse(text) else { return };
    let query = sel.to_query();
    let again = Selector::parse(&query).unwrap_or_else(|e| panic!("{text:?} printed {query:?}: {e}"));
    assert_eq!(again, sel, "{text:?} -> {query:?}");
    let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
    let _ = sel.matches(&labels);
});
