//! Build script shared by every crate that links binaries against perch-mlx (named with
//! `build = "../mlx/link-rpath.rs"`): gives those binaries an rpath to libmlx's folder.
//! A dependency's own link arguments never reach its dependents' binaries, so perch-mlx
//! publishes the folder (its `links = "mlx"` metadata) and each dependent applies it.
//! perch-runtime passes it on (`links = "perch_runtime"`) for the crates above it, which
//! reach MLX only through the runtime.

/// Prints the link arguments and the metadata for the crates above.
pub fn main() {
    let dir =
        std::env::var("DEP_MLX_LIB_DIR").or_else(|_| std::env::var("DEP_PERCH_RUNTIME_LIB_DIR"));
    if let Ok(dir) = dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:lib_dir={dir}");
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
