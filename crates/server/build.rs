//! The server's build script: links like every crate above MLX (`link-rpath.rs`), and
//! builds the web UI (`ui/`, Vite) into `OUT_DIR`, listing its files in
//! `ui_assets.rs` so the binary embeds them. Cargo runs it again only when a file under
//! `ui/` that the build reads changes; `npm ci` runs only when the lockfile is newer
//! than the installed packages.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../mlx/link-rpath.rs"]
mod link_rpath;

fn main() {
    link_rpath::main();
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    // Only paths that exist: Cargo runs a build script again every time when one it was
    // told to watch is missing.
    for input in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
        "tsconfig.node.json",
    ] {
        let path = ui.join(input);
        assert!(path.exists(), "ui/{input} is missing");
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ui");
    install_packages(&ui);
    npm(
        &ui,
        &[
            "run",
            "build",
            "--",
            "--outDir",
            out.to_str().expect("OUT_DIR is UTF-8"),
            "--emptyOutDir",
        ],
    );
    write_asset_list(&out);
}

/// `npm ci`, when `node_modules` is missing or older than the lockfile.
fn install_packages(ui: &Path) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let lock = modified(&ui.join("package-lock.json"));
    let installed = modified(&ui.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < lock {
        npm(ui, &["ci", "--no-audit", "--no-fund"]);
    }
}

fn npm(ui: &Path, args: &[&str]) {
    let status = Command::new("npm").args(args).current_dir(ui).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "`npm {}` in ui/ failed ({s}); its output is above. The web UI is part of \
             the build.",
            args.join(" ")
        ),
        Err(e) => panic!(
            "building Perch's web UI needs Node.js 20 or later with npm, and `npm` could \
             not be run ({e}). Install Node.js (macOS: `brew install node`; Debian/Ubuntu: \
             `sudo apt install nodejs npm`, or run scripts/install-deps) and build again."
        ),
    }
}

/// Writes `ui_assets.rs`: `ASSETS`, each built file's URL path, media type and bytes.
fn write_asset_list(out: &Path) {
    let mut files = Vec::new();
    collect(out, &mut files);
    files.sort();
    let mut list = String::from("/// The built web UI: (URL path, media type, bytes).\n");
    list.push_str("pub(crate) static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for file in files {
        let path = file.strip_prefix(out).expect("under out").to_string_lossy();
        let url = format!("/{}", path.replace('\\', "/"));
        list.push_str(&format!(
            "    ({url:?}, {:?}, include_bytes!({:?})),\n",
            media_type(&file),
            file.display().to_string()
        ));
    }
    list.push_str("];\n");
    let target = out.parent().expect("OUT_DIR/ui").join("ui_assets.rs");
    std::fs::write(target, list).expect("write ui_assets.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the UI build wrote its folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn media_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
