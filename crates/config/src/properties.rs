//! The `java.util.Properties` text format, as `Properties.load` reads zoo.cfg.
//!
//! Rules (from the `Properties.load(Reader)` contract):
//! - natural lines end at `\n`, `\r` or `\r\n`; a line whose first non-blank
//!   character (blank = space, tab, form feed) is `#` or `!` is a comment;
//!   blank lines are skipped;
//! - a line ending in an odd number of backslashes continues on the next line;
//!   the backslash is dropped and the next line's leading blanks are skipped
//!   (a comment line never continues; a continuation line is never a comment);
//! - the key runs to the first unescaped `=`, `:` or blank; then blanks, at most
//!   one `=`/`:`, and blanks again are skipped; the rest of the line is the value;
//! - escapes `\t \n \r \f \uXXXX` are decoded, any other `\c` stands for `c`.
//!
//! ZooKeeper then trims keys and values (`String.trim`, which drops every char
//! `<= ' '`). Java reads the bytes as ISO-8859-1; we read UTF-8 when the file is
//! valid UTF-8 (so non-ASCII paths survive) and fall back to ISO-8859-1.

/// One `key=value` pair and the 1-based line where its logical line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A malformed `\uXXXX` escape: the only thing `Properties.load` rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Decodes file bytes the way we read zoo.cfg: UTF-8 (a leading BOM dropped),
/// else ISO-8859-1 like Java.
pub(crate) fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.strip_prefix('\u{feff}').unwrap_or(text).to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Java's `String.trim`: strips every char up to and including U+0020.
pub(crate) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn ends_in_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Parses properties text into pairs in file order (duplicates kept; the
/// caller decides that the last one wins, as `Properties` does).
pub(crate) fn parse(text: &str) -> Result<Vec<Property>, SyntaxError> {
    let lines = natural_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let first = lines[i].trim_start_matches(is_blank);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut current = first;
        loop {
            if ends_in_odd_backslashes(current) {
                logical.push_str(&current[..current.len() - 1]);
                if i < lines.len() {
                    current = lines[i].trim_start_matches(is_blank);
                    i += 1;
                    continue;
                }
            } else {
                logical.push_str(current);
            }
            break;
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key).map_err(|message| SyntaxError {
            line: line_no,
            message,
        })?;
        let value = unescape(raw_value).map_err(|message| SyntaxError {
            line: line_no,
            message,
        })?;
        out.push(Property {
            key,
            value,
            line: line_no,
        });
    }
    Ok(out)
}

/// Splits a logical line (escapes still in place) into raw key and raw value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_separator = false;
    for (pos, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            key_end = pos;
            value_start = pos + 1;
            has_separator = true;
            break;
        }
        if !escaped && is_blank(c) {
            key_end = pos;
            value_start = pos + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let rest = &line[value_start..];
    let mut skip = 0;
    for (pos, c) in rest.char_indices() {
        if is_blank(c) {
            skip = pos + c.len_utf8();
        } else if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            skip = pos + 1;
        } else {
            break;
        }
    }
    (&line[..key_end], &rest[skip..])
}

/// Decodes `Properties` escapes; `\uXXXX` may form UTF-16 surrogate pairs.
fn unescape(raw: &str) -> Result<String, String> {
    if !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let decoded = match chars.next() {
            None => break,
            Some('t') => '\t',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('f') => '\x0c',
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u16::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| format!("malformed \\uxxxx escape '\\u{hex}'"))?;
                units.push(unit);
                continue;
            }
            Some(other) => other,
        };
        let mut buf = [0u16; 2];
        units.extend_from_slice(decoded.encode_utf16(&mut buf));
    }
    Ok(String::from_utf16_lossy(&units))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value, p.line))
            .collect()
    }

    fn kv(k: &str, v: &str, line: usize) -> (String, String, usize) {
        (k.to_owned(), v.to_owned(), line)
    }

    #[test]
    fn equals_colon_and_blank_all_separate_key_from_value() {
        assert_eq!(
            pairs("a=1\nb:2\nc 3\nd\t = 4\ne = : 5\nf:=6\n"),
            vec![
                kv("a", "1", 1),
                kv("b", "2", 2),
                kv("c", "3", 3),
                kv("d", "4", 4),
                kv("e", ": 5", 5),
                kv("f", "=6", 6),
            ]
        );
    }

    #[test]
    fn blank_separator_leaves_later_equals_in_the_value() {
        assert_eq!(pairs("a b=c"), vec![kv("a", "b=c", 1)]);
    }

    #[test]
    fn hash_and_bang_lines_are_comments_and_blank_lines_are_skipped() {
        assert_eq!(
            pairs("# one\n  ! two\n\n   \nk=v # not a comment\n"),
            vec![kv("k", "v # not a comment", 5)]
        );
    }

    #[test]
    fn trailing_backslash_continues_and_drops_leading_blanks() {
        assert_eq!(
            pairs("key=one\\\n     two\\\n\tthree\nnext=1"),
            vec![kv("key", "onetwothree", 1), kv("next", "1", 4)]
        );
    }

    #[test]
    fn a_comment_line_never_continues() {
        assert_eq!(pairs("#comment\\\nnext=1"), vec![kv("next", "1", 2)]);
    }

    #[test]
    fn a_continuation_line_is_never_a_comment() {
        assert_eq!(pairs("k=a\\\n#b"), vec![kv("k", "a#b", 1)]);
    }

    #[test]
    fn an_even_number_of_backslashes_is_an_escaped_backslash() {
        assert_eq!(
            pairs("k=v\\\\\nn=1"),
            vec![kv("k", "v\\", 1), kv("n", "1", 2)]
        );
    }

    #[test]
    fn backslash_at_end_of_file_is_dropped() {
        assert_eq!(pairs("last=end\\"), vec![kv("last", "end", 1)]);
    }

    #[test]
    fn escapes_are_decoded_in_keys_and_values() {
        assert_eq!(
            pairs("\\u0041=x\nsp\\ ace=1\nt=a\\tb\nc=C:\\\\dir\\q"),
            vec![
                kv("A", "x", 1),
                kv("sp ace", "1", 2),
                kv("t", "a\tb", 3),
                kv("c", "C:\\dirq", 4),
            ]
        );
    }

    #[test]
    fn malformed_unicode_escape_is_a_syntax_error_on_its_line() {
        let err = parse("a=1\nb=\\u12G4").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn crlf_and_cr_line_endings_count_lines() {
        assert_eq!(
            pairs("a=1\r\nb=2\rc=3"),
            vec![kv("a", "1", 1), kv("b", "2", 2), kv("c", "3", 3)]
        );
    }

    #[test]
    fn a_key_alone_has_an_empty_value() {
        assert_eq!(pairs("empty\n"), vec![kv("empty", "", 1)]);
    }

    #[test]
    fn invalid_utf8_is_read_as_latin1() {
        assert_eq!(decode(b"a=\xe9"), "a=\u{e9}");
        assert_eq!(decode("\u{feff}a=日本".as_bytes()), "a=日本");
    }
}
