//! Link-time fixes for libtorch inside a PostgreSQL backend (see README "Build notes"):
//! 1. rpath: tch's link arguments do not reach this crate, so without an rpath the server
//!    cannot find libtorch_cpu.so unless it runs with LD_LIBRARY_PATH.
//! 2. `--no-as-needed -ltorch`: rustc links with `--as-needed`, which drops libtorch.so (and
//!    with it libtorch_cuda.so) because no symbol is referenced directly; CUDA would then be
//!    silently unavailable even on a GPU host.
fn main() {
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not report its libtorch directory (DEP_TCH_LIBTORCH_LIB)");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-L{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
