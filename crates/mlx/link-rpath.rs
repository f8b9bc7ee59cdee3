//! Build script shared by every crate that links binaries against perch-mlx (named with
//! `build = "../mlx/link-rpath.rs"`): gives those binaries an rpath to libmlx's folder.
//! A dependency's own link arguments never reach its dependents' binaries, so perch-mlx
//! publishes the folder (its `links = "mlx"` metadata) and each dependent applies it.
//! perch-runtime passes it on (`links = "perch_runtime"`) for the crates above it, which
//! reach MLX only through the runtime.
//!
//! On Linux the binaries also keep the symbols of the static libraries they link to
//! themselves (`--exclude-libs,ALL`). llama.cpp arrives as static libraries whose GGUF
//! reader shares its C function names (`gguf_get_key`, …) with the copy inside libmlx;
//! exported from the binary, they would take the place of libmlx's own, and MLX's GGUF
//! loader would call llama.cpp's functions on its own structures and crash. (macOS's
//! two-level namespace binds libmlx to its own symbols already.)

/// Prints the link arguments and the metadata for the crates above.
pub fn main() {
    let dir =
        std::env::var("DEP_MLX_LIB_DIR").or_else(|_| std::env::var("DEP_PERCH_RUNTIME_LIB_DIR"));
    if let Ok(dir) = dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:lib_dir={dir}");
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-Wl,--exclude-libs,ALL");
    }
    let undefined = [
        "DEP_MLX_ALLOW_SHLIB_UNDEFINED",
        "DEP_PERCH_RUNTIME_ALLOW_SHLIB_UNDEFINED",
    ];
    if undefined.iter().any(|v| std::env::var_os(v).is_some()) {
        println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
        println!("cargo:allow_shlib_undefined=1");
    }
}
