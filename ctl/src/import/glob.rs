//! File-name patterns for keepalived's `include`: `*`, `?`, `[abc]`,
//! `[a-z]`, `[!x]` per path component, and csh-style braces
//! (`conf.d/{a,b}.conf`), expanded first. Matches are sorted, as glob(3)
//! sorts them; names starting with `.` match only a pattern that starts
//! with `.`.

use std::path::{Path, PathBuf};

/// Expands `{a,b}` groups (nested ones too); text without braces is
/// returned as it is.
pub fn expand_braces(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    // The first `{` with its matching `}` and top-level commas.
    let Some(open) = chars.iter().position(|c| *c == '{') else {
        return vec![pattern.to_string()];
    };
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_string()];
    };
    let prefix: String = chars[..open].iter().collect();
    let suffix: String = chars[close + 1..].iter().collect();
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt: String = chars[w[0] + 1..w[1]].iter().collect();
        for tail in expand_braces(&format!("{alt}{suffix}")) {
            out.push(format!("{prefix}{tail}"));
        }
    }
    out
}

/// Whether `name` matches the one-component pattern `pat`.
pub fn matches(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if n.first() == Some(&'.') && p.first() != Some(&'.') {
        return false;
    }
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|k| match_from(&p[1..], &n[k..])),
        Some('?') => !n.is_empty() && match_from(&p[1..], &n[1..]),
        Some('[') => {
            let Some(end) = p.iter().skip(2).position(|c| *c == ']').map(|e| e + 2) else {
                // No closing bracket: a literal `[`.
                return n.first() == Some(&'[') && match_from(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else {
                return false;
            };
            let (negate, set) = match p[1] {
                '!' | '^' => (true, &p[2..end]),
                _ => (false, &p[1..end]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_from(&p[end + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && match_from(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && match_from(&p[1..], &n[1..]),
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The existing files matching `pattern`, relative to `dir` unless absolute.
pub fn glob(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for p in expand_braces(pattern) {
        let path = Path::new(&p);
        let start = if path.is_absolute() {
            PathBuf::from("/")
        } else {
            dir.to_path_buf()
        };
        let parts: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                std::path::Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut here = vec![start];
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let mut next = Vec::new();
            for d in &here {
                if !has_wildcard(part) {
                    let cand = d.join(part);
                    if (last && cand.is_file()) || (!last && cand.is_dir()) {
                        next.push(cand);
                    }
                    continue;
                }
                let Ok(entries) = std::fs::read_dir(d) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| matches(part, name))
                    .collect();
                names.sort();
                for name in names {
                    let cand = d.join(&name);
                    if (last && cand.is_file()) || (!last && cand.is_dir()) {
                        next.push(cand);
                    }
                }
            }
            here = next;
        }
        found.extend(here);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_in_order_and_nest() {
        assert_eq!(expand_braces("a.conf"), ["a.conf"]);
        assert_eq!(expand_braces("{a,b}.conf"), ["a.conf", "b.conf"]);
        assert_eq!(
            expand_braces("{foo/{,cat,dog},bar}"),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(expand_braces("x{unclosed"), ["x{unclosed"]);
    }

    #[test]
    fn wildcards() {
        assert!(matches("*.conf", "vs.conf"));
        assert!(!matches("*.conf", "vs.conf.bak"));
        assert!(!matches("*.conf", ".hidden.conf"));
        assert!(matches(".*", ".hidden"));
        assert!(matches("vs?.conf", "vs1.conf"));
        assert!(!matches("vs?.conf", "vs12.conf"));
        assert!(matches("vs[0-9].conf", "vs7.conf"));
        assert!(!matches("vs[!0-9].conf", "vs7.conf"));
        assert!(matches("vs[!0-9].conf", "vsx.conf"));
        assert!(matches("[ab]", "b"));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
    }

    #[test]
    fn glob_walks_directories_sorted() {
        let d = std::env::temp_dir().join(format!("lbctl-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("conf.d/sub")).unwrap();
        for f in [
            "conf.d/b.conf",
            "conf.d/a.conf",
            "conf.d/c.txt",
            "conf.d/sub/d.conf",
        ] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(&d).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names(glob(&d, "conf.d/*.conf")),
            ["conf.d/a.conf", "conf.d/b.conf"]
        );
        assert_eq!(names(glob(&d, "*/*/*.conf")), ["conf.d/sub/d.conf"]);
        assert_eq!(
            names(glob(&d, "conf.d/{c.txt,a.conf}")),
            ["conf.d/c.txt", "conf.d/a.conf"]
        );
        assert!(glob(&d, "conf.d/none*").is_empty());
        let abs = d.join("conf.d/a.conf").display().to_string();
        assert_eq!(glob(Path::new("/nonexistent"), &abs).len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
