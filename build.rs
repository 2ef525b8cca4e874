//! Rebuild when the embedded SQL changes.
fn main() {
    println!("cargo:rerun-if-changed=queries");
    println!("cargo:rerun-if-changed=migrations");
}
