//! Fuzz target: see `oracles::jsonpath`.
#![cfg_attr(feature = "libfuzzer", no_main)]

#[path = "../oracles.rs"]
#[allow(dead_code)]
mod oracles;

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oracles::jsonpath(data));

#[cfg(all(feature = "afl", not(feature = "libfuzzer")))]
fn main() {
    afl::fuzz!(|data: &[u8]| oracles::jsonpath(data));
}
