//! The app's build script: Tauri's (reads `tauri.conf.json`, checks the icons) and the
//! rpath to libmlx's folder every binary above perch-mlx needs (`link-rpath.rs`).

#[path = "../crates/mlx/link-rpath.rs"]
mod link_rpath;

fn main() {
    link_rpath::main();
    tauri_build::build();
}
