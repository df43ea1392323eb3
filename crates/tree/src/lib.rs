//! The data tree.
