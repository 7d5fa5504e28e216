//! Fuzz target: see `oracles::api_body`.
#![cfg_attr(feature = "libfuzzer", no_main)]

#[path = "../oracles.rs"]
#[allow(dead_code)]
mod oracles;

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| oracles::api_body(data));

#[cfg(all(feature = "afl", not(feature = "libfuzzer")))]
fn main() {
    afl::fuzz!(|data: &[u8]| oracles::api_body(data));
}
