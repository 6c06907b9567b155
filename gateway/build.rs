//! Embeds the built web UI (`web/dist/`, made by `scripts/build-web.sh`) into
//! the binary: writes `$OUT_DIR/web_assets.rs`, a table of relative paths and
//! `include_bytes!` of each file. When the UI has not been built the table is
//! empty and the gateway serves a placeholder page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = manifest.join("web").join("dist");
    // Watch the folder that will change: dist once it exists, else what would hold it.
    let watched = if dist.is_dir() {
        dist.clone()
    } else if manifest.join("web").is_dir() {
        manifest.join("web")
    } else {
        manifest.clone()
    };
    println!("cargo:rerun-if-changed={}", watched.display());

    let mut files = Vec::new();
    if dist.is_dir() {
        collect(&dist, &mut files);
    }
    files.sort();
    let mut table = String::from("/// Embedded web UI files: (path relative to dist, contents).\n");
    table.push_str("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&dist)
            .expect("under dist")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            table,
            "    ({relative:?}, include_bytes!({:?})),",
            file.display().to_string()
        )
        .expect("writing to a string");
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("web_assets.rs"), table).expect("writing web_assets.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}
