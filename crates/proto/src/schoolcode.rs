//! School codes: what a person types to register a device with a school
//! ([`crate::Auth::SchoolCode`]).
//!
//! A code is ten symbols of Crockford's base32 (digits and capitals without
//! `I`, `L`, `O` and `U`), shown as two groups of five (`7KQ2M-XH4PD`): 50
//! random bits, short enough to read out to a class, and, with the server
//! limiting wrong guesses per address, not guessable. Reading is forgiving:
//! case, spaces and dashes do not matter, and `I`/`L` read as `1`, `O` as
//! `0`, as people confuse them.
//!
//! ```
//! use lectern_proto::schoolcode::{display, from_random, normalize};
//!
//! let code = from_random([0x5a; 7]);
//! assert_eq!(code.len(), 10);
//! let shown = display(&code);
//! assert_eq!(normalize(&shown.to_lowercase().replace('-', " ")), Ok(code));
//! assert!(normalize("too short").is_err());
//! ```

/// Symbols of a code, in value order (Crockford's base32).
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols in a code.
pub const LEN: usize = 10;
/// Longest input [`normalize`] looks at: a typed code with any spacing.
pub const MAX_INPUT: usize = 64;

/// Why typed text is not a school code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not [`LEN`] symbols once spaces and dashes are dropped.
    #[error("a school code has {LEN} letters and digits")]
    Length,
    /// A character that is not in a code.
    #[error("a school code has only letters and digits")]
    Symbol,
}

/// The code in canonical form (ten capitals and digits of [`ALPHABET`]) from
/// what a person typed.
pub fn normalize(input: &str) -> Result<String, CodeError> {
    if input.len() > MAX_INPUT {
        return Err(CodeError::Length);
    }
    let mut code = String::with_capacity(LEN);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' | '\t' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return Err(CodeError::Symbol),
        };
        code.push(c);
    }
    if code.len() != LEN {
        return Err(CodeError::Length);
    }
    Ok(code)
}

/// A code from 7 random bytes (the first 50 bits are used).
pub fn from_random(bytes: [u8; 7]) -> String {
    let mut bits = bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    bits >>= 56 - 5 * LEN;
    (0..LEN)
        .rev()
        .map(|k| ALPHABET[(bits >> (5 * k) & 31) as usize] as char)
        .collect()
}

/// A canonical code as people see it: two groups of five.
pub fn display(code: &str) -> String {
    if code.len() == LEN && code.is_ascii() {
        format!("{}-{}", &code[..5], &code[5..])
    } else {
        code.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusable_letters_read_as_digits() {
        assert_eq!(
            normalize("il0o1-abcde").unwrap(),
            "1100 1ABCDE".replace(' ', "")
        );
        assert_eq!(normalize(" 7kq2m xh4pd ").unwrap(), "7KQ2MXH4PD");
        assert_eq!(normalize("7KQ2M-XH4P"), Err(CodeError::Length));
        assert_eq!(normalize("7KQ2M-XH4PU"), Err(CodeError::Symbol));
        assert_eq!(normalize("7KQ2M-XH4PDé"), Err(CodeError::Symbol));
        assert_eq!(normalize(&"-".repeat(100)), Err(CodeError::Length));
    }

    #[test]
    fn random_codes_use_every_symbol_and_read_back() {
        let mut seen = [false; 32];
        for i in 0..200u64 {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes();
            let code = from_random(x[..7].try_into().unwrap());
            assert_eq!(code.len(), LEN);
            assert_eq!(normalize(&display(&code)).unwrap(), code);
            for b in code.bytes() {
                seen[ALPHABET.iter().position(|&a| a == b).unwrap()] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(from_random([0; 7]), "0000000000");
        assert_eq!(from_random([0xff; 7]), "ZZZZZZZZZZ");
    }
}
