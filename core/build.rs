//! rpath to libtorch for this crate's own test binaries, so `cargo test` runs without
//! LD_LIBRARY_PATH (link args from tch's build script do not reach dependent crates).
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
