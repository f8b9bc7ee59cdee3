//! Build script shared by every crate that links binaries against perch-mlx (named with
//! `build = "../mlx/link-rpath.rs"`): gives those binaries an rpath to libmlx's folder.
//! A dependency's own link arguments never reach its dependents' binaries, so perch-mlx
//! publishes the folder (its `links = "mlx"` metadata) and each dependent applies it.

fn main() {
    if let Ok(dir) = std::env::var("DEP_MLX_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    if std::env::var_os("DEP_MLX_ALLOW_SHLIB_UNDEFINED").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
    }
}
