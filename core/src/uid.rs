//! Random base62 uids with LaminDB's lengths.
//!
//! Versioned registries (artifact, collection, transform) have uids made of a
//! random stem and a 4-character base62 version counter starting at `0000`.

use md5::{Digest, Md5};
use rand::Rng;

/// The base62 alphabet in LaminDB's order: digits, upper case, lower case.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of the version suffix of versioned uids.
pub const VERSION_SUFFIX_LEN: usize = 4;

/// A fresh random base62 string of `len` characters from the OS's CSPRNG.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// A deterministic base62 uid for an external id (an ontology id, an Ensembl
/// gene id): the md5 digest read as one big-endian number, written in base62,
/// first `len` characters (at most 22). The same id always gives the same
/// uid, so re-imports find the records they made before.
pub fn base62_md5(input: &str, len: usize) -> String {
    let digest = Md5::digest(input.as_bytes());
    let mut n = u128::from_be_bytes(digest.into());
    let mut digits = Vec::with_capacity(22);
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    // 2^128 needs 22 base62 digits; pad so every uid has the full length.
    digits.resize(22, b'0');
    digits.reverse();
    String::from_utf8(digits[..len.min(22)].to_vec()).expect("base62 is ASCII")
}

/// Whether `s` is exactly `len` base62 characters.
pub fn is_base62(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The 4-character base62 suffix for version number `n` (0 → `0000`).
/// Returns `None` when `n` does not fit in four characters (62^4 versions).
pub fn version_suffix(n: u32) -> Option<String> {
    let base = BASE62.len() as u32;
    if n >= base.pow(VERSION_SUFFIX_LEN as u32) {
        return None;
    }
    let mut digits = [b'0'; VERSION_SUFFIX_LEN];
    let mut rest = n;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(rest % base) as usize];
        rest /= base;
    }
    Some(String::from_utf8(digits.to_vec()).expect("base62 is ASCII"))
}

/// The version number encoded by a 4-character base62 suffix.
pub fn parse_version_suffix(suffix: &str) -> Option<u32> {
    if !is_base62(suffix, VERSION_SUFFIX_LEN) {
        return None;
    }
    suffix.bytes().try_fold(0u32, |acc, b| {
        let digit = BASE62.iter().position(|&c| c == b)? as u32;
        Some(acc * BASE62.len() as u32 + digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_uids_are_deterministic_and_distinct() {
        let a = base62_md5("CL:0000625", 14);
        assert_eq!(a, base62_md5("CL:0000625", 14));
        assert_ne!(a, base62_md5("CL:0000624", 14));
        assert!(is_base62(&a, 14));
        assert_eq!(base62_md5("CL:0000625", 14), "6IC9NGJEv2Y4TD"); // computed with Python hashlib
        assert_eq!(base62_md5("", 22).len(), 22);
        assert_eq!(base62_md5("x", 40).len(), 22);
    }

    #[test]
    fn random_uids_have_the_requested_length_and_alphabet() {
        for len in [8, 12, 16, 20] {
            let uid = random_base62(len);
            assert!(is_base62(&uid, len), "{uid} is not base62 of length {len}");
        }
    }

    #[test]
    fn random_uids_differ() {
        let a = random_base62(16);
        let b = random_base62(16);
        assert_ne!(a, b);
    }

    #[test]
    fn is_base62_rejects_wrong_length_and_alphabet() {
        assert!(!is_base62("abc", 4));
        assert!(!is_base62("ab-d", 4));
        assert!(!is_base62("abcé", 5));
        assert!(is_base62("aZ09", 4));
    }

    #[test]
    fn version_suffix_counts_in_base62() {
        assert_eq!(version_suffix(0).unwrap(), "0000");
        assert_eq!(version_suffix(1).unwrap(), "0001");
        assert_eq!(version_suffix(61).unwrap(), "000z");
        assert_eq!(version_suffix(62).unwrap(), "0010");
        assert_eq!(version_suffix(62u32.pow(4) - 1).unwrap(), "zzzz");
        assert_eq!(version_suffix(62u32.pow(4)), None);
    }

    #[test]
    fn version_suffix_round_trips() {
        for n in [0, 1, 61, 62, 3843, 100_000, 62u32.pow(4) - 1] {
            assert_eq!(parse_version_suffix(&version_suffix(n).unwrap()), Some(n));
        }
        assert_eq!(parse_version_suffix("00-1"), None);
        assert_eq!(parse_version_suffix("000"), None);
    }
}
