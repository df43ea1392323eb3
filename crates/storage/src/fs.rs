//! The file system under the data files: the real one, or with the `sim` feature the simulated
//! one of turmoil, where a crashed member loses what it wrote and did not fsync (the
//! deterministic simulation tests of the consensus crate). Every file of the storage and the
//! consensus crates is opened through here.

#[cfg(not(feature = "sim"))]
pub use std::fs::{
    copy, create_dir_all, hard_link, metadata, read_dir, read_to_string, remove_dir_all,
    remove_file, rename, write, File, OpenOptions,
};
#[cfg(feature = "sim")]
pub use turmoil::fs::shim::std::fs::{
    copy, create_dir_all, hard_link, metadata, read_dir, read_to_string, remove_dir_all,
    remove_file, rename, write, File, OpenOptions,
};

/// fsyncs a directory so that a rename or a new file in it is durable.
pub fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(not(feature = "sim"))]
    return File::open(dir)?.sync_all();
    #[cfg(feature = "sim")]
    return turmoil::fs::shim::std::fs::sync_dir(dir);
}
