//! `lector schemas`: write the JSON Schemas of the published events, or check them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder the schemas live in.
    #[arg(long, default_value = "schemas")]
    dir: PathBuf,
    /// Only check that the files are up to date; exit non-zero naming the stale ones.
    #[arg(long)]
    check: bool,
}

/// The schema files that differ from what the Rust types generate (missing, changed or
/// extra), as paths under `dir`.
pub fn stale(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let files = lector_core::schema::all();
    let mut stale = Vec::new();
    for file in &files {
        let path = dir.join(&file.path);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == file.text() => {}
            _ => stale.push(path),
        }
    }
    for entry in walk(dir)? {
        let rel = entry.strip_prefix(dir).unwrap_or(&entry).to_string_lossy().replace('\\', "/");
        if rel.ends_with(".json") && !files.iter().any(|f| f.path == rel) {
            stale.push(entry);
        }
    }
    stale.sort();
    Ok(stale)
}

fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(out) };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.check {
        let stale = stale(&args.dir)?;
        if stale.is_empty() {
            println!(
                "schemas are up to date ({} files in {})",
                lector_core::schema::all().len(),
                args.dir.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("these schema files are stale (regenerate them with `cargo run -- schemas`):");
        for path in stale {
            eprintln!("  {}", path.display());
        }
        return Ok(ExitCode::FAILURE);
    }
    for path in stale(&args.dir)? {
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for file in lector_core::schema::all() {
        let path = args.dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, file.text()).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
