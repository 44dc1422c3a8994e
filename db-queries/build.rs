//! Embeds the SQL migrations under `schema/migrations/` into the crate.
//!
//! Each migration lives in `schema/migrations/NNNN-name/` and holds files
//! `upN.sql`, applied in numeric order of N. Versions must run 1, 2, 3, ...
//! without gaps, and so must the steps inside one migration; anything else
//! fails the build with a message naming the offending path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let schema = manifest.parent().unwrap().join("schema");
    let migrations_dir = schema.join("migrations");
    println!("cargo:rerun-if-changed={}", schema.display());
    println!("cargo:rerun-if-changed={}", migrations_dir.display());

    let mut migrations: Vec<(u32, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&migrations_dir).expect("reading schema/migrations") {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let dir_name = path.file_name().unwrap().to_str().unwrap().to_string();
        let (num, name) = dir_name
            .split_once('-')
            .unwrap_or_else(|| panic!("migration directory {dir_name:?} is not NNNN-name"));
        let version: u32 = num
            .parse()
            .unwrap_or_else(|_| panic!("migration directory {dir_name:?} is not NNNN-name"));
        migrations.push((version, name.to_string(), path));
    }
    migrations.sort_by_key(|m| m.0);

    let mut out = String::from("&[\n");
    for (i, (version, name, path)) in migrations.iter().enumerate() {
        assert_eq!(
            *version as usize,
            i + 1,
            "migration versions must be 1, 2, 3, ... without gaps; found {}",
            path.display()
        );
        let steps = steps_of(path);
        writeln!(out, "    MigrationSource {{ version: {version}, name: {name:?}, steps: &[")
            .unwrap();
        for (n, step) in steps {
            println!("cargo:rerun-if-changed={}", step.display());
            writeln!(
                out,
                "        MigrationStep {{ file: \"up{n:0width$}.sql\", sql: include_str!({:?}) }},",
                step.display().to_string(),
                width = step_width(&step),
            )
            .unwrap();
        }
        writeln!(out, "    ] }},").unwrap();
    }
    out.push(']');
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("migrations.rs"), out).unwrap();
}

/// The digits of N as written in the file name, so the name is reproduced exactly.
fn step_width(path: &Path) -> usize {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    stem.len() - 2
}

fn steps_of(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut steps = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let n = file
            .strip_prefix("up")
            .and_then(|s| s.strip_suffix(".sql"))
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{} is not named upN.sql", path.display()));
        steps.push((n, path));
    }
    steps.sort_by_key(|s| s.0);
    for (i, (n, path)) in steps.iter().enumerate() {
        assert_eq!(
            *n as usize,
            i + 1,
            "migration steps must be up1, up2, ... without gaps; found {}",
            path.display()
        );
    }
    assert!(!steps.is_empty(), "migration {} has no upN.sql files", dir.display());
    steps
}
