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

use std::path::PathBuf;

/// This script's own path. `file!()` is relative to the workspace root, which is the package
/// folder or one of its ancestors; the bench crate `crates/lambda/init-ladder` shares the script
/// from further away than the functions do.
fn own_path() -> Option<PathBuf> {
    let package = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    package.ancestors().map(|dir| dir.join(file!())).find(|path| path.is_file())
}

fn main() {
    // Run again when this script changes only, not at every change in the package. Were it not
    // found, cargo's default (any change in the package) would still be right, only slower.
    if let Some(path) = own_path() {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
