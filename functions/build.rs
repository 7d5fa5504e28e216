//! The build script every function shares (`build = "../build.rs"`): link the bootstrap as a
//! position-dependent executable on Linux.
//!
//! A position-independent executable is relocated by the dynamic loader at every start: for a
//! function of several megabytes that is tens of thousands of relocations written into pages that
//! are then copied, which was the largest single cost of a cold start after the page faults
//! themselves (BENCHMARKS.md, "Init time"). Linked at a fixed address, the loader has almost
//! nothing to do. The trade-off is that the executable's own image is not placed at a random
//! address (the heap, the stack and the shared libraries still are); see docs/DEPLOY.md.
//!
//! The flag cannot come from `.cargo/config.toml`: cargo-lambda sets `RUSTFLAGS` itself, which
//! replaces every configured rustflags.

fn main() {
    println!("cargo::rerun-if-changed=../build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
