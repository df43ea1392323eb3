//! Znode path rules, as ZooKeeper's `PathUtils.validatePath`, and the helpers
//! that split a path into parent and child the way `DataTree` does.
//!
//! ZooKeeper checks paths one UTF-16 code unit at a time, so a character
//! outside the Basic Multilingual Plane (a surrogate pair in Java) is refused;
//! we walk the UTF-16 form too, so the same strings pass and fail.

/// The paths ZooKeeper owns: they can never be deleted (`DataTree.isSpecialPath`).
pub const ROOT: &str = "/";
pub const PROC: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

pub fn is_special_path(path: &str) -> bool {
    matches!(path, ROOT | PROC | QUOTA | CONFIG)
}

/// Checks `path` as `PathUtils.validatePath(path, isSequential)`: a sequential
/// create is validated as if its suffix were already appended.
pub fn validate_path(path: &str, is_sequential: bool) -> Result<(), String> {
    if is_sequential {
        validate(&format!("{path}1"))
    } else {
        validate(path)
    }
}

fn validate(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    let chars: Vec<u16> = path.encode_utf16().collect();
    if chars[0] != u16::from(b'/') {
        return Err("Path must start with / character".into());
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == u16::from(b'/') {
        return Err("Path must not end with / character".into());
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    let mut lastc = slash;
    for i in 1..chars.len() {
        let c = chars[i];
        let next_is_end_or_slash = i + 1 == chars.len() || chars[i + 1] == slash;
        let reason = if c == 0 {
            Some("null character not allowed")
        } else if c == slash && lastc == slash {
            Some("empty node name specified")
        } else if c == dot && lastc == dot {
            // ".." as a whole component; i >= 2 here because lastc starts as '/'.
            (chars[i - 2] == slash && next_is_end_or_slash).then_some("relative paths not allowed")
        } else if c == dot {
            (chars[i - 1] == slash && next_is_end_or_slash).then_some("relative paths not allowed")
        } else if (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || (0xfff0..=0xffff).contains(&c)
        {
            Some("invalid character")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(format!(
                "Invalid path string \"{path}\" caused by {reason} @{i}"
            ));
        }
        lastc = c;
    }
    Ok(())
}

/// The parent of `path` as `DataTree` computes it (text before the last '/'),
/// with ZooKeeper's alias of "" for the root mapped to "/". `None` when the
/// path has no '/'.
pub fn parent_of(path: &str) -> Option<&str> {
    let slash = path.rfind('/')?;
    Some(if slash == 0 { ROOT } else { &path[..slash] })
}

/// The last component of `path` (text after the last '/').
pub fn child_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// ZooKeeper measures paths with Java's `String.length()`, in UTF-16 units;
/// `approximateDataSize` must count the same way.
pub(crate) fn java_len(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.encode_utf16().count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths_pass() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/.a",
            "/a..",
            "/...",
            "/a/..b",
            "/zookeeper",
            "/é",
        ] {
            assert_eq!(validate_path(p, false), Ok(()), "{p}");
        }
    }

    #[test]
    fn invalid_paths_fail() {
        for p in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/./a",
            "/../a",
            "/a\0b",
            "/a\u{1}",
            "/a\u{7f}",
            "/a\u{9f}",
            "/a\u{e000}",
            "/a\u{fff0}",
            "/a\u{1F600}",
        ] {
            assert!(validate_path(p, false).is_err(), "{p:?} should be refused");
        }
    }

    #[test]
    fn sequential_paths_are_checked_with_a_suffix() {
        // "/a/" is a valid sequential prefix: the node becomes "/a/0000000001".
        assert_eq!(validate_path("/a/", true), Ok(()));
        assert_eq!(validate_path("/", true), Ok(()));
        assert!(validate_path("/a//", true).is_err());
    }

    #[test]
    fn parent_and_child_split_like_data_tree() {
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/"), Some("/"));
        assert_eq!(parent_of("a"), None);
        assert_eq!(child_name("/a/b"), "b");
    }

    #[test]
    fn java_length_counts_utf16_units() {
        assert_eq!(java_len("/abc"), 4);
        assert_eq!(java_len("/é"), 2);
        assert_eq!(java_len("/\u{1F600}"), 3);
    }
}
