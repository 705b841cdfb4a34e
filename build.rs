//! Fingerprints what a primed state depends on (the crate's sources, its primers and the
//! features built), for the primed states kept on disk (`src/mixer/stored.rs`): a state
//! another build computed is never loaded in place of priming.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn main() {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    files.sort();
    files.push("onnx-models/nc-primer.bin".into());
    files.push("onnx-models/nc-primer-v7.bin".into());
    files.push("onnx-models/nc-primer-x86.bin".into());
    let mut hash = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        hash.update(file.to_string_lossy().as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let mut features: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("CARGO_FEATURE_"))
        .collect();
    features.sort();
    hash.update(features.join(",").as_bytes());
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    let hex: String = hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=NC_BUILD_FINGERPRINT={hex}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=onnx-models/nc-primer.bin");
    println!("cargo:rerun-if-changed=onnx-models/nc-primer-v7.bin");
    println!("cargo:rerun-if-changed=onnx-models/nc-primer-x86.bin");
    println!("cargo:rerun-if-changed=build.rs");
}
