//! The rule function catalogue: every function, called with arguments read from the bytes
//! (`weir_rules::functions::hostile`). A call may fail; it must not panic, and what it makes
//! stays within the catalogue's bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_rules::functions::{hostile, MAX_OUTPUT};

fuzz_target!(|data: &[u8]| {
    let mut bytes = hostile::Bytes::new(data);
    while !bytes.is_empty() {
        let (f, args) = hostile::call(&mut bytes);
        if let Ok(v) = (f.call)(&args) {
            assert!(v.as_bytes().map_or(0, <[u8]>::len) <= MAX_OUTPUT, "{} made too much", f.name);
        }
    }
});
