//! Build script for `perch-mlx`: find libmlx and its headers, compile the C++ shim
//! against them, and link it so binaries run with no environment variables.
//!
//! MLX comes from `MLX_DIR` (an unzipped `mlx` folder with `include/` and `lib/`) when set,
//! otherwise from the official PyPI wheel for this platform (see `wheel.rs`).

mod wheel;

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=MLX_DIR");
    println!("cargo:rerun-if-env-changed=PERCH_MLX");
    println!("cargo:rerun-if-env-changed=PERCH_MLX_CACHE");
    println!("cargo:rerun-if-env-changed=PYTHON");
    println!("cargo:rerun-if-changed=src/shim/shim.h");
    println!("cargo:rerun-if-changed=src/shim/shim.cc");

    let variant = wheel::Variant::for_target();
    let mlx_dir = match env::var_os("MLX_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => wheel::ensure_unpacked(variant).unwrap_or_else(|message| {
            panic!(
                "perch-mlx could not obtain MLX {}: {message}\n\
                 Either install python3 with pip, or set MLX_DIR to an unzipped `mlx` folder \
                 that holds include/ and lib/ (for example from the `{}` wheel).",
                wheel::MLX_VERSION,
                variant.package()
            )
        }),
    };
    let include_dir = mlx_dir.join("include");
    let lib_dir = mlx_dir.join("lib");
    for needed in [&include_dir, &lib_dir] {
        assert!(
            needed.is_dir(),
            "MLX folder {} has no {} (MLX_DIR must hold include/ and lib/)",
            mlx_dir.display(),
            needed.display()
        );
    }

    let mut shim = cxx_build::bridge("src/ffi.rs");
    shim.file("src/shim/shim.cc")
        .include(&include_dir)
        .include("src/shim")
        .std("c++20")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations");
    shim.compile("perch_mlx_shim");

    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=mlx");
    // For this crate's own tests; dependents read DEP_MLX_LIB_DIR and do the same.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:lib_dir={}", lib_dir.display());
    if variant == wheel::Variant::Cuda {
        // libmlx's CUDA dependencies (cuBLAS, cuDNN, NCCL…) are only needed at run time.
        println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
        println!("cargo:allow_shlib_undefined=1");
    }
}
