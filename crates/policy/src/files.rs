//! Names and paths for sent and collected files (issue 13.7), checked on the
//! server and again on the agent.

/// Longest file or folder name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 120;

/// Most folders a collect path may name.
pub const MAX_PATH_DEPTH: usize = 16;

/// Longest collect path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Names Windows reserves whatever the extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters never kept in a name: separators, Windows' forbidden set,
/// control characters and bidirectional overrides (which disguise extensions).
fn forbidden(c: char) -> bool {
    matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        || c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// A safe file or folder name from anything a teacher or device sent: only
/// the last path component, forbidden characters replaced by `_`, no leading
/// or trailing dots or spaces (so never `.`, `..` or a hidden file), no
/// reserved device name, at most [`MAX_NAME_BYTES`]; `fallback` if nothing is left.
pub fn sanitize_name(raw: &str, fallback: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mapped: String = last
        .chars()
        .map(|c| if forbidden(c) { '_' } else { c })
        .collect();
    let mut name = mapped
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .to_string();
    if name.len() > MAX_NAME_BYTES {
        let mut cut = MAX_NAME_BYTES;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name = name.trim_end_matches(['.', ' ']).to_string();
    }
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    if RESERVED.contains(&stem.as_str()) {
        name.insert(0, '_');
    }
    if name.is_empty() {
        fallback.to_string()
    } else {
        name
    }
}

/// Why a collect path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Empty, or only separators.
    #[error("the path is empty")]
    Empty,
    /// Longer than [`MAX_PATH_BYTES`] or deeper than [`MAX_PATH_DEPTH`].
    #[error("the path is too long")]
    TooLong,
    /// A component would leave the folder or is not a plain name.
    #[error(
        "the path may only name folders and files inside the Lectern folder: {0:?} is not allowed"
    )]
    Component(String),
}

/// Splits a collect path (relative to the student's `~/Lectern/` folder,
/// `/`-separated; a leading `~/Lectern/` is accepted) into plain names.
pub fn collect_path(raw: &str) -> Result<Vec<String>, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let rel = raw
        .trim()
        .strip_prefix("~/Lectern/")
        .or_else(|| raw.trim().strip_prefix("Lectern/"))
        .unwrap_or(raw.trim());
    let parts: Vec<String> = rel
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    if parts.len() > MAX_PATH_DEPTH {
        return Err(PathError::TooLong);
    }
    for p in &parts {
        if p == "." || p == ".." || p.contains('\\') || p.chars().any(forbidden) {
            return Err(PathError::Component(p.clone()));
        }
    }
    Ok(parts)
}

/// A relative path a device reported for a collected file, made safe to
/// create under the server's folder for that device: each component
/// sanitised, `..` and `.` dropped, at most [`MAX_PATH_DEPTH`] deep.
pub fn safe_relative(raw: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = raw
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .map(|p| sanitize_name(p, "_"))
        .collect();
    (!parts.is_empty() && parts.len() <= MAX_PATH_DEPTH).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_made_harmless() {
        assert_eq!(sanitize_name("../../etc/passwd", "f"), "passwd");
        assert_eq!(sanitize_name("..\\..\\boot.ini", "f"), "boot.ini");
        assert_eq!(sanitize_name("..", "f"), "f");
        assert_eq!(sanitize_name(".bashrc", "f"), "bashrc");
        assert_eq!(sanitize_name("a\u{0}b\nc.txt", "f"), "a_b_c.txt");
        assert_eq!(sanitize_name("evil\u{202E}fdp.exe", "f"), "evil_fdp.exe");
        assert_eq!(sanitize_name("CON.txt", "f"), "_CON.txt");
        assert_eq!(sanitize_name("nul", "f"), "_nul");
        assert_eq!(sanitize_name("  report.pdf. ", "f"), "report.pdf");
        assert_eq!(sanitize_name("a:b*c?.doc", "f"), "a_b_c_.doc");
        assert_eq!(sanitize_name("", "f"), "f");
        let long = "é".repeat(200);
        assert!(sanitize_name(&long, "f").len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn collect_paths_stay_inside_the_folder() {
        assert_eq!(
            collect_path("~/Lectern/Hand-in/Essay.docx").unwrap(),
            ["Hand-in", "Essay.docx"]
        );
        assert_eq!(collect_path("Hand-in/").unwrap(), ["Hand-in"]);
        assert!(matches!(collect_path("../x"), Err(PathError::Component(_))));
        assert!(matches!(
            collect_path("a/./b"),
            Err(PathError::Component(_))
        ));
        assert!(matches!(
            collect_path("a\\..\\b"),
            Err(PathError::Component(_))
        ));
        assert_eq!(collect_path("/"), Err(PathError::Empty));
        assert_eq!(collect_path(&"a/".repeat(20)), Err(PathError::TooLong));
        assert_eq!(
            safe_relative("../Hand-in/./x\u{1}.txt").unwrap(),
            ["Hand-in", "x_.txt"]
        );
        assert_eq!(safe_relative("../.."), None);
    }
}
