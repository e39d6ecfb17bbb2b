//! Checking the file names senders give.
//!
//! The name is only ever shown to recipients and suggested to their clients
//! as a name to save under; the server stores files under its own names.
//! Still, a name must be safe for a careless client to use as is: so it may
//! not be or contain a path, hide itself, or carry characters that garble a
//! terminal or disguise an extension. Such names are refused, not silently
//! rewritten, so the sender learns what was wrong.

/// Longest file name, in bytes (the common file-system limit).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Checks a file name; the error text is shown to the sender.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.trim().is_empty() {
        return Err("the file name is empty".into());
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(format!(
            "the file name is {} bytes long; at most {MAX_FILE_NAME_BYTES} are allowed",
            name.len()
        ));
    }
    if name.contains(['/', '\\']) {
        return Err("the file name contains '/' or '\\'; send the name without directories".into());
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return Err("the file name starts with '.'; hidden names are not allowed".into());
    }
    if name.contains(':') {
        // `C:name` is a drive-relative path on Windows, `a:b` a stream.
        return Err("the file name contains ':'".into());
    }
    if let Some(c) = name.chars().find(|&c| c.is_control() || is_format_trick(c)) {
        return Err(format!(
            "the file name contains the invisible or control character U+{:04X}",
            c as u32
        ));
    }
    if name != name.trim() || name.ends_with('.') {
        return Err("the file name starts or ends with a space, or ends with '.'".into());
    }
    Ok(())
}

/// Bidirectional overrides and zero-width characters: they make
/// `invoice\u{202E}fdp.exe` display as `invoiceexe.pdf`.
fn is_format_trick(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "report.pdf",
            "Foto 2024-01-02.jpeg",
            "naïve résumé.txt",
            "a",
            "x..y",
        ] {
            assert_eq!(check_file_name(name), Ok(()), "{name}");
        }
        assert!(check_file_name(&"n".repeat(255)).is_ok());
    }

    #[test]
    fn paths_and_tricks_are_refused() {
        for name in [
            "",
            "   ",
            "../etc/passwd",
            "..",
            ".",
            "/etc/passwd",
            "dir/file",
            "..\\..\\boot.ini",
            "C:evil",
            ".bashrc",
            "bell\u{7}",
            "line\nbreak",
            "nul\0byte",
            "invoice\u{202E}fdp.exe",
            "zero\u{200B}width",
            " leading",
            "trailing ",
            "dot.",
            &"n".repeat(256),
        ] {
            assert!(check_file_name(name).is_err(), "{name:?} was accepted");
        }
    }
}
