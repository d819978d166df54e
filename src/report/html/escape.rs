//! Text and links for HTML: escaping, and relative URLs from the page to files on disk.

use std::path::{Component, Path, PathBuf};

/// `s` with the characters HTML gives a meaning escaped; safe in text and in quoted
/// attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The path from folder `from` to `to`, both absolute and canonical (`../results/a.png`).
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c.as_os_str());
    }
    rel
}

/// A relative path as a URL: `/` between components, every byte outside the unreserved set
/// percent-encoded (spaces, `#`, `?` and non-ASCII names survive).
pub fn url(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| {
            let mut part = String::new();
            for &b in c.as_os_str().as_encoded_bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    part.push(b as char);
                } else {
                    part.push_str(&format!("%{b:02X}"));
                }
            }
            part
        })
        .collect();
    parts.join("/")
}

/// An id for an HTML anchor: letters, digits, `-` and `_` kept, anything else as `-`.
pub fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_links_are_escaped() {
        assert_eq!(
            esc("<a href=\"x\">R&D's</a>"),
            "&lt;a href=&quot;x&quot;&gt;R&amp;D&#39;s&lt;/a&gt;"
        );
        let rel = relative(Path::new("/w/report"), Path::new("/w/results/a b#1.png"));
        assert_eq!(rel, Path::new("../results/a b#1.png"));
        assert_eq!(url(&rel), "../results/a%20b%231.png");
        assert_eq!(
            url(&relative(Path::new("/w/r"), Path::new("/w/r/files/é.png"))),
            "files/%C3%A9.png"
        );
        assert_eq!(anchor("voc07 svm/res4"), "voc07-svm-res4");
    }
}
