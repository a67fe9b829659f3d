//! Input mutation: byte-level edits, JSON tokens and boundary numbers (the
//! sizes the parsers enforce, in both byte orders), and splicing two inputs.

/// A small deterministic generator (SplitMix64): a run is reproducible from
/// its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Tokens that steer JSON parsers into their edge cases.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-1",
    b"1e309",
    b"-0",
    b"1.5",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"4294967296",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"\\udfff\"",
    b"\\",
    b"\\\"",
    b"\"type\"",
    b"\"kind\"",
    b"{\"type\":\"",
    b"\"watch\":[",
    b"\"width\":",
    b"[[[[[[[[[[[[[[[[",
    b"\xff",
    b"\xc3\xa9",
    b"\xf0\x9f\x98\x80",
    b"\xed\xa0\x80",
    b" ",
    b"\n",
    b"\t",
];

/// Lengths around the limits the parsers enforce.
const SIZES: &[u32] = &[
    0,
    1,
    4,
    5,
    9,
    10,
    12,
    255,
    256,
    5000,
    5001,
    64 * 1024,
    64 * 1024 + 1,
    256 * 1024,
    256 * 1024 + 1,
    1024 * 1024 - 1,
    1024 * 1024,
    1024 * 1024 + 1,
    16 * 1024 * 1024,
    16 * 1024 * 1024 + 1,
    i32::MAX as u32,
    u32::MAX,
];

/// Bytes with special meaning somewhere (JPEG markers, media kinds).
const BYTES: &[u8] = &[
    0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0xd8, b'"', b'\\', b'{', b'}',
];

/// Returns a mutation of `input` (1 to 8 stacked edits), at most `max_len`
/// bytes long; `other` is a second input to splice from.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        edit(rng, &mut out, other);
    }
    out.truncate(max_len);
    out
}

fn edit(rng: &mut Rng, out: &mut Vec<u8>, other: &[u8]) {
    let at = |rng: &mut Rng, v: &Vec<u8>| rng.below(v.len() + 1);
    match rng.below(11) {
        0 if !out.is_empty() => {
            let i = rng.below(out.len());
            out[i] ^= 1 << rng.below(8);
        }
        1 if !out.is_empty() => {
            let i = rng.below(out.len());
            out[i] = BYTES[rng.below(BYTES.len())];
        }
        2 => {
            let i = at(rng, out);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            out.splice(i..i, bytes);
        }
        3 if !out.is_empty() => {
            let i = rng.below(out.len());
            let n = 1 + rng.below((out.len() - i).min(32));
            out.drain(i..i + n);
        }
        4 if !out.is_empty() => {
            // Repeat a piece: long arrays, deep nesting, many frames.
            let i = rng.below(out.len());
            let n = 1 + rng.below((out.len() - i).min(64));
            let piece = out[i..i + n].to_vec();
            let j = at(rng, out);
            for _ in 0..1 + rng.below(8) {
                out.splice(j..j, piece.iter().copied());
            }
        }
        5 => {
            let i = at(rng, out);
            out.splice(i..i, TOKENS[rng.below(TOKENS.len())].iter().copied());
        }
        6 if !out.is_empty() => {
            let tok = TOKENS[rng.below(TOKENS.len())];
            let i = rng.below(out.len());
            let end = (i + tok.len()).min(out.len());
            out.splice(i..end, tok.iter().copied());
        }
        7 if !out.is_empty() => {
            let n = SIZES[rng.below(SIZES.len())];
            let bytes = if rng.one_in(2) {
                n.to_le_bytes()
            } else {
                n.to_be_bytes()
            };
            let i = rng.below(out.len());
            let end = (i + 4).min(out.len());
            out.splice(i..end, bytes);
        }
        8 if !other.is_empty() => {
            // Splice: a head of this input and a tail of the other.
            let i = at(rng, out);
            let j = rng.below(other.len());
            out.truncate(i);
            out.extend_from_slice(&other[j..]);
        }
        9 if !out.is_empty() => {
            // A decimal number where a digit was.
            if let Some(i) = out.iter().position(u8::is_ascii_digit) {
                let n = SIZES[rng.below(SIZES.len())].to_string();
                out.splice(i..i + 1, n.into_bytes());
            }
        }
        10 if !out.is_empty() => {
            let n = rng.below(out.len());
            out.truncate(n);
        }
        _ => out.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_bounded_and_reproducible() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = mutate(&mut a, b"{\"type\":\"heartbeat\"}", b"[1,2]", 64);
            let y = mutate(&mut b, b"{\"type\":\"heartbeat\"}", b"[1,2]", 64);
            assert_eq!(x, y);
            assert!(x.len() <= 64);
        }
    }
}
