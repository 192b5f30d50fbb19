//! Arbitrary text into the manifest parser: it must return objects or an error, never
//! panic; whatever it returns must survive defaulting, validation and a JSON round trip.
#![no_main]

use coracle_config::manifest::{decode_object, parse_documents};
use coracle_config::{defaults, validation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse_documents(text) else { return };
    for p in parsed {
        let mut obj = p.object;
        defaults::apply(&mut obj);
        let _ = validation::validate(&obj);
        let _ = validation::validate_update(&obj, &obj);
        let again = decode_object(obj.to_json()).expect("a stored object decodes again");
        assert_eq!(again.object, obj, "JSON round trip changed the object");
    }
});
