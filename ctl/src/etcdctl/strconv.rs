//! Numbers and booleans parsed as etcdctl's Go code parses them, failing with Go's
//! `strconv` error texts (which etcdctl prints inside its own messages).

/// Go's `strconv` error text for a number that does not parse.
pub fn num_error(func: &str, text: &str, overflow: bool) -> String {
    let why = if overflow {
        "value out of range"
    } else {
        "invalid syntax"
    };
    format!("strconv.{func}: parsing \"{text}\": {why}")
}

/// A boolean flag value as Go's `strconv.ParseBool` reads it.
pub fn go_bool(text: &str) -> Result<bool, String> {
    etcd_server::config::values::boolean(text)
        .map_err(|_| format!("strconv.ParseBool: parsing \"{text}\": invalid syntax"))
}

/// A signed integer flag value as pflag reads it (`strconv.ParseInt` with base 0).
pub fn go_i64(text: &str) -> Result<i64, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = match digits.get(..2) {
        Some("0x" | "0X") => (16, &digits[2..]),
        Some("0o" | "0O") => (8, &digits[2..]),
        Some("0b" | "0B") => (2, &digits[2..]),
        _ => (10, digits),
    };
    let syntax = || num_error("ParseInt", text, false);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let magnitude = i128::from_str_radix(digits, radix).map_err(|_| syntax())?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| num_error("ParseInt", text, true))
}

/// Go's `strconv.ParseInt(text, 16, 64)`: lease IDs.
pub fn hex_i64(text: &str) -> Result<i64, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(num_error("ParseInt", text, false));
    }
    let magnitude =
        i128::from_str_radix(digits, 16).map_err(|_| num_error("ParseInt", text, true))?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| num_error("ParseInt", text, true))
}

/// Go's `strconv.ParseUint(text, 16, 64)`: member IDs.
pub fn hex_u64(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(num_error("ParseUint", text, false));
    }
    u64::from_str_radix(text, 16).map_err(|_| num_error("ParseUint", text, true))
}

/// Go's `strconv.ParseInt(text, 10, 64)`.
pub fn dec_i64(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(num_error("ParseInt", text, false));
    }
    text.parse().map_err(|_| num_error("ParseInt", text, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_numbers_and_bools() {
        assert_eq!(go_i64("-1"), Ok(-1));
        assert_eq!(go_i64("0x10"), Ok(16));
        assert_eq!(
            go_i64("abc"),
            Err("strconv.ParseInt: parsing \"abc\": invalid syntax".to_string())
        );
        assert_eq!(
            go_i64("99999999999999999999"),
            Err(
                "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
                    .to_string()
            )
        );
        assert_eq!(go_bool("false"), Ok(false));
        assert!(go_bool("yes").is_err());
        assert_eq!(hex_i64("694d8a3b5d8b2c0b"), Ok(0x694d8a3b5d8b2c0b));
        assert_eq!(
            hex_u64("zz"),
            Err("strconv.ParseUint: parsing \"zz\": invalid syntax".into())
        );
        assert_eq!(dec_i64("12"), Ok(12));
    }
}
