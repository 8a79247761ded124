//! I/O errors as Go words them.

/// An I/O error as Go writes it: `no such file or directory`, `connection refused`
/// (lower case, without Rust's ` (os error N)`).
pub fn reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_errors_read_as_go_prints_them() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(super::reason(&e), "connection refused");
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(super::reason(&e), "no such file or directory");
    }
}
