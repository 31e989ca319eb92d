//! Where the project's conformance captures live.
//!
//! Tests read real captures from `../shared/captures` next to the
//! workspace (or from `$VXLAN_CAPTURES`), and skip with a message when the
//! folder is absent, as it is in a user's clone.

use std::path::PathBuf;

/// The environment variable that overrides the capture folder.
pub const ENV: &str = "VXLAN_CAPTURES";

/// The capture folder, if it exists.
pub fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os(ENV) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures"),
    };
    dir.is_dir().then_some(dir)
}

/// The path of `name` (e.g. `"tcpdump/vxlan.pcap"`) in the capture folder,
/// or `None` with a message on stderr saying why the caller should skip.
pub fn path(name: &str) -> Option<PathBuf> {
    let Some(dir) = dir() else {
        eprintln!("SKIP: capture folder not found (set {ENV} or place ../shared/captures beside the workspace)");
        return None;
    };
    let p = dir.join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: capture {} not found", p.display());
        None
    }
}
