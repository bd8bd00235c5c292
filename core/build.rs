//! Link arguments for this crate's own binaries (tests, examples such as `loo`), which link
//! libtorch directly when the `torch` feature is on:
//! 1. rpath, so they run without LD_LIBRARY_PATH (tch's link arguments do not reach dependent
//!    crates);
//! 2. `--no-as-needed -ltorch`: rustc links with `--as-needed`, which drops libtorch.so (and
//!    libtorch_cuda.so with it) because no symbol is referenced directly; CUDA would then be
//!    silently unavailable even on a GPU host.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
