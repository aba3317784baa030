//! Redis's glob matching (`stringmatchlen` in `util.c`) for `SCAN MATCH`, byte for byte:
//! `*`, `?`, `[abc]`, `[^a-z]`, and `\` escaping the next byte (also inside brackets).
//! psor's own prefixes reach the server glob-escaped, so this must agree with Redis exactly.

/// True when `s` matches `pattern` as Redis matches it.
pub fn matches(pattern: &[u8], s: &[u8]) -> bool {
    let mut budget = 1_000_000u32; // Redis bounds the work of patterns like `*a*a*a*b` too.
    match_from(pattern, s, &mut budget)
}

fn match_from(mut p: &[u8], mut s: &[u8], budget: &mut u32) -> bool {
    while !p.is_empty() && !s.is_empty() || (p.first() == Some(&b'*')) {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                for i in 0..=s.len() {
                    if match_from(&p[1..], &s[i..], budget) {
                        return true;
                    }
                }
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut hit = false;
                loop {
                    match p.first() {
                        None => break,
                        Some(b']') => break,
                        Some(b'\\') if p.len() >= 2 => {
                            p = &p[1..];
                            if p[0] == s[0] {
                                hit = true;
                            }
                        }
                        Some(_) if p.len() >= 3 && p[1] == b'-' => {
                            let (mut lo, mut hi) = (p[0], p[2]);
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            p = &p[2..];
                            if s[0] >= lo && s[0] <= hi {
                                hit = true;
                            }
                        }
                        Some(&c) => {
                            if c == s[0] {
                                hit = true;
                            }
                        }
                    }
                    p = &p[1..];
                }
                // Like Redis, a missing `]` ends the class at the end of the pattern.
                if p.is_empty() {
                    // Redis steps back so the outer loop's advance lands on the end.
                    if hit == not {
                        return false;
                    }
                    s = &s[1..];
                    continue;
                }
                if hit == not {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if p[0] != s[0] {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if c != s[0] {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn like_redis() {
        assert!(matches(b"*", b""));
        assert!(matches(b"*", b"abc"));
        assert!(matches(b"a*", b"abc"));
        assert!(!matches(b"a*", b"bac"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"MyPAC\\*x*", b"MyPAC*xyz"));
        assert!(!matches(b"MyPAC\\*x*", b"MyPACaxyz"));
        assert!(matches(b"a\\[b*", b"a[bc"));
        assert!(matches(b"a\\?*", b"a?"));
        assert!(!matches(b"a\\?*", b"ab"));
        assert!(matches(b"k\\\\*", b"k\\z"));
        assert!(matches(b"[\\]]*", b"]x"));
        assert!(matches(b"*a*b", b"xxaxxb"));
        assert!(!matches(b"*a*b", b"xxaxxbc"));
        assert!(matches(b"\xff\x00*", b"\xff\x00\x01"));
        assert!(!matches(b"abc", b"ab"));
        assert!(!matches(b"ab", b"abc"));
    }
}
