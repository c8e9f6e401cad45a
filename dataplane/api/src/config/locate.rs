//! Finding where a field is written in the RON text.
//!
//! Validation works on the parsed [`Config`](super::Config), which has
//! forgotten where things were written. This module scans the original text
//! with a small, forgiving RON tokenizer and follows a field path such as
//! `services[1].real_servers[0].weight` through the nested structs and lists
//! to the line and column of the field's name (or of a list element's first
//! character). It never fails loudly: any text, however broken, gives either
//! a position or `None`.

/// A 1-based line and column (columns count characters, as RON's own errors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A struct field (or a map key).
    Field(String),
    /// A list (or tuple) element.
    Index(usize),
}

/// Splits `services[1].real_servers[0].weight` into segments. `None` if the
/// path is malformed (an unclosed `[`, an index that is not a number, ...).
pub fn parse_path(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    if path.is_empty() {
        return Some(out);
    }
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Segment::Field(name.to_string()));
        } else if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let inner = rest.strip_prefix('[')?;
            let close = inner.find(']')?;
            out.push(Segment::Index(inner[..close].trim().parse().ok()?));
            rest = &inner[close + 1..];
        }
    }
    Some(out)
}

/// The position of `path` in `text`, or `None` when it is not written there.
///
/// Tokenises `text` on every call: to locate several paths in one text, build
/// one [`Locator`] and ask it.
pub fn locate(text: &str, path: &str) -> Option<Location> {
    Locator::new(text).locate(path)
}

/// Like [`locate`], but when the field itself is not written (a defaulted
/// field, say) it walks up the path and returns the position of the nearest
/// enclosing field or element that is written. `None` only when nothing on
/// the path can be found.
pub fn locate_or_parent(text: &str, path: &str) -> Option<Location> {
    Locator::new(text).locate_or_parent(path)
}

/// A text tokenised once, with its bracket structure indexed, so that any
/// number of paths can be located in it without scanning it again.
///
/// A file with thousands of problems is exactly the file whose problems all
/// need locating; re-tokenising it per problem made that quadratic (minutes
/// for a few thousand). Building the index is one pass over the tokens; a
/// lookup then costs the fields and elements it looks at along its path.
pub struct Locator {
    tokens: Vec<Token>,
    /// For each opening bracket's token index: its elements, as `(first,
    /// end)` token ranges between top-level commas, empty ones left out.
    elements: Vec<Vec<(usize, usize)>>,
    /// Where the top-level value starts, after `#![...]` attributes.
    root: usize,
}

impl Locator {
    /// Tokenises `text` and indexes its groups. Never fails: broken text
    /// gives fewer (or odder) groups, never a panic.
    pub fn new(text: &str) -> Locator {
        let tokens = tokenize(text);
        let n = tokens.len();
        // For each opening bracket: the index just past its match (the end
        // of the tokens when it is never closed).
        let mut group_end = vec![n; n];
        let mut elements = vec![Vec::new(); n];
        // Open groups, innermost last: (open index, start of the current element).
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            match t.kind {
                Kind::Open(_) => stack.push((i, i + 1)),
                // A closing bracket of the wrong kind still closes one level,
                // so broken text cannot derail the scan; one with nothing
                // open is ignored.
                Kind::Close(_) => {
                    if let Some((open, start)) = stack.pop() {
                        if i > start {
                            elements[open].push((start, i));
                        }
                        group_end[open] = i + 1;
                    }
                }
                Kind::Comma => {
                    if let Some((open, start)) = stack.last_mut() {
                        if i > *start {
                            elements[*open].push((*start, i));
                        }
                        *start = i + 1;
                    }
                }
                _ => {}
            }
        }
        // Groups never closed run to the end of the text.
        for (open, start) in stack {
            if n > start {
                elements[open].push((start, n));
            }
        }
        let root = root_value(&tokens, &group_end);
        Locator {
            tokens,
            elements,
            root,
        }
    }

    /// The position of `path`, or `None` when it is not written in the text.
    pub fn locate(&self, path: &str) -> Option<Location> {
        let segments = parse_path(path)?;
        if segments.is_empty() {
            return None;
        }
        self.find(&segments).map(|i| self.tokens[i].loc)
    }

    /// The position of `path` or, when it is not written, of the nearest
    /// enclosing field or element that is (see [`locate_or_parent`]).
    pub fn locate_or_parent(&self, path: &str) -> Option<Location> {
        let mut segments = parse_path(path)?;
        while !segments.is_empty() {
            if let Some(i) = self.find(&segments) {
                return Some(self.tokens[i].loc);
            }
            segments.pop();
        }
        None
    }

    /// The token index `segments` leads to: a field's name or an element's first token.
    fn find(&self, segments: &[Segment]) -> Option<usize> {
        let tokens = &self.tokens;
        let mut value = self.root;
        let mut found = None;
        for seg in segments {
            let open = body(tokens, value)?;
            let elems = &self.elements[open];
            let (at, next) = match seg {
                Segment::Index(n) => {
                    let (s, _) = *elems.get(*n)?;
                    (s, s)
                }
                // Linear in the fields of this one struct (or map), which
                // are few; the path's other levels are not rescanned.
                Segment::Field(name) => {
                    let (s, _) = elems.iter().copied().find(|&(s, e)| {
                        e >= s + 2
                            && tokens[s + 1].kind == Kind::Colon
                            && match &tokens[s].kind {
                                Kind::Ident(id) | Kind::Str(id) => id == name,
                                _ => false,
                            }
                    })?;
                    (s, s + 2)
                }
            };
            found = Some(at);
            value = next;
        }
        found
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// An identifier (raw identifiers `r#name` are stored without the `r#`).
    Ident(String),
    /// A string literal's body, escapes left as written.
    Str(String),
    /// A number, char or byte literal: their content never matters here.
    Literal,
    Open(char),
    Close(char),
    Colon,
    Comma,
    /// Anything else (`#`, `!`, `-`, stray characters).
    Other(char),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    loc: Location,
}

struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl Scanner<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.chars.clone();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn loc(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }

    /// After `/*`: skips to the matching `*/`, honouring nesting.
    fn block_comment(&mut self) {
        let mut depth = 1usize;
        while let Some(c) = self.bump() {
            if c == '/' && self.peek() == Some('*') {
                self.bump();
                depth += 1;
            } else if c == '*' && self.peek() == Some('/') {
                self.bump();
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
        }
    }

    /// After the opening `"`: the body up to the closing quote.
    fn string(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.bump() {
            match c {
                '"' => break,
                '\\' => {
                    s.push(c);
                    if let Some(e) = self.bump() {
                        s.push(e);
                    }
                }
                _ => s.push(c),
            }
        }
        s
    }

    /// At the first `#` or `"` of a raw string (after the `r`).
    fn raw_string(&mut self) -> String {
        let mut hashes = 0usize;
        while self.peek() == Some('#') {
            self.bump();
            hashes += 1;
        }
        if self.peek() != Some('"') {
            return String::new();
        }
        self.bump();
        let mut s = String::new();
        while let Some(c) = self.bump() {
            if c == '"' {
                let mut n = 0;
                while n < hashes && self.peek() == Some('#') {
                    self.bump();
                    n += 1;
                }
                if n == hashes {
                    return s;
                }
                s.push('"');
                s.push_str(&"#".repeat(n));
            } else {
                s.push(c);
            }
        }
        s
    }

    /// After the opening `'`: a char literal, or a lone quote.
    fn char_lit(&mut self) {
        match self.peek() {
            Some('\\') => {
                self.bump();
                self.bump();
                // `\u{...}` and `\x..`: run to the closing quote on this line.
                while let Some(c) = self.peek() {
                    if c == '\'' || c == '\n' {
                        break;
                    }
                    self.bump();
                }
            }
            Some('\n') | None => return,
            Some(_) => {
                self.bump();
            }
        }
        if self.peek() == Some('\'') {
            self.bump();
        }
    }

    fn ident_rest(&mut self, s: &mut String) {
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn tokenize(text: &str) -> Vec<Token> {
    #[cfg(test)]
    tests::TOKENIZE_PASSES.with(|c| c.set(c.get() + 1));
    let mut sc = Scanner {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    while let Some(c) = sc.peek() {
        if c.is_whitespace() {
            sc.bump();
            continue;
        }
        let loc = sc.loc();
        let kind = match c {
            '/' if sc.peek2() == Some('/') => {
                while let Some(c) = sc.bump() {
                    if c == '\n' {
                        break;
                    }
                }
                continue;
            }
            '/' if sc.peek2() == Some('*') => {
                sc.bump();
                sc.bump();
                sc.block_comment();
                continue;
            }
            '"' => {
                sc.bump();
                Kind::Str(sc.string())
            }
            '\'' => {
                sc.bump();
                sc.char_lit();
                Kind::Literal
            }
            '(' | '[' | '{' => {
                sc.bump();
                Kind::Open(c)
            }
            ')' | ']' | '}' => {
                sc.bump();
                Kind::Close(c)
            }
            ':' => {
                sc.bump();
                Kind::Colon
            }
            ',' => {
                sc.bump();
                Kind::Comma
            }
            c if c.is_ascii_digit() => {
                while let Some(c) = sc.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '.' {
                        sc.bump();
                    } else {
                        break;
                    }
                }
                Kind::Literal
            }
            'r' | 'b' => {
                sc.bump();
                let next = sc.peek();
                if c == 'r' && matches!(next, Some('"')) {
                    Kind::Str(sc.raw_string())
                } else if c == 'r' && next == Some('#') {
                    match sc.peek2() {
                        Some(n) if is_ident_start(n) => {
                            // Raw identifier `r#name`.
                            sc.bump();
                            let mut s = String::new();
                            sc.ident_rest(&mut s);
                            Kind::Ident(s)
                        }
                        _ => Kind::Str(sc.raw_string()),
                    }
                } else if c == 'b' && next == Some('"') {
                    sc.bump();
                    Kind::Str(sc.string())
                } else if c == 'b' && next == Some('\'') {
                    sc.bump();
                    sc.char_lit();
                    Kind::Literal
                } else if c == 'b' && next == Some('r') && matches!(sc.peek2(), Some('"' | '#')) {
                    sc.bump();
                    Kind::Str(sc.raw_string())
                } else {
                    let mut s = String::from(c);
                    sc.ident_rest(&mut s);
                    Kind::Ident(s)
                }
            }
            c if is_ident_start(c) => {
                let mut s = String::new();
                sc.ident_rest(&mut s);
                Kind::Ident(s)
            }
            c => {
                sc.bump();
                Kind::Other(c)
            }
        };
        out.push(Token { kind, loc });
    }
    out
}

/// The token index where the top-level value starts, after any
/// `#![enable(...)]` attributes.
fn root_value(tokens: &[Token], group_end: &[usize]) -> usize {
    let mut i = 0;
    while i < tokens.len() && tokens[i].kind == Kind::Other('#') {
        i += 1;
        if i < tokens.len() && tokens[i].kind == Kind::Other('!') {
            i += 1;
        }
        if i < tokens.len() && matches!(tokens[i].kind, Kind::Open(_)) {
            i = group_end[i];
        }
    }
    i
}

/// The opening bracket holding the body of the value starting at `i`:
/// skips a struct name (`Config(...)`) and looks inside `Some(...)`.
fn body(tokens: &[Token], mut i: usize) -> Option<usize> {
    loop {
        match &tokens.get(i)?.kind {
            Kind::Open(_) => return Some(i),
            Kind::Ident(name) => {
                if !matches!(tokens.get(i + 1)?.kind, Kind::Open(_)) {
                    return None;
                }
                if name == "Some"
                    && matches!(tokens.get(i + 2)?.kind, Kind::Open(_) | Kind::Ident(_))
                {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        /// How many times [`tokenize`] ran on this thread (each test has its
        /// own thread, so tests running in parallel do not disturb it).
        pub(super) static TOKENIZE_PASSES: Cell<usize> = const { Cell::new(0) };
    }

    fn tokenize_passes() -> usize {
        TOKENIZE_PASSES.with(|c| c.get())
    }

    /// The locator as it was before the index: it rescans groups from the
    /// tokens for every step of every path. Kept as the oracle the indexed
    /// [`Locator`] must agree with.
    mod reference {
        use super::super::*;

        fn skip_group(tokens: &[Token], open: usize) -> usize {
            let mut depth = 0usize;
            let mut i = open;
            while i < tokens.len() {
                match tokens[i].kind {
                    Kind::Open(_) => depth += 1,
                    Kind::Close(_) => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            tokens.len()
        }

        fn root_value(tokens: &[Token]) -> usize {
            let mut i = 0;
            while i < tokens.len() && tokens[i].kind == Kind::Other('#') {
                i += 1;
                if i < tokens.len() && tokens[i].kind == Kind::Other('!') {
                    i += 1;
                }
                if i < tokens.len() && matches!(tokens[i].kind, Kind::Open(_)) {
                    i = skip_group(tokens, i);
                }
            }
            i
        }

        fn elements(tokens: &[Token], open: usize) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut i = open + 1;
            let mut start = i;
            while i < tokens.len() {
                match tokens[i].kind {
                    Kind::Open(_) => {
                        i = skip_group(tokens, i);
                        continue;
                    }
                    Kind::Close(_) => break,
                    Kind::Comma => {
                        if i > start {
                            out.push((start, i));
                        }
                        start = i + 1;
                    }
                    _ => {}
                }
                i += 1;
            }
            if i > start {
                out.push((start, i.min(tokens.len())));
            }
            out
        }

        fn find(tokens: &[Token], segments: &[Segment]) -> Option<usize> {
            let mut value = root_value(tokens);
            let mut found = None;
            for seg in segments {
                let open = body(tokens, value)?;
                let elems = elements(tokens, open);
                let (at, next) = match seg {
                    Segment::Index(n) => {
                        let (s, _) = *elems.get(*n)?;
                        (s, s)
                    }
                    Segment::Field(name) => {
                        let (s, _) = elems.iter().copied().find(|&(s, e)| {
                            e >= s + 2
                                && tokens[s + 1].kind == Kind::Colon
                                && match &tokens[s].kind {
                                    Kind::Ident(id) | Kind::Str(id) => id == name,
                                    _ => false,
                                }
                        })?;
                        (s, s + 2)
                    }
                };
                found = Some(at);
                value = next;
            }
            found
        }

        pub fn locate(text: &str, path: &str) -> Option<Location> {
            let segments = parse_path(path)?;
            if segments.is_empty() {
                return None;
            }
            let tokens = tokenize(text);
            find(&tokens, &segments).map(|i| tokens[i].loc)
        }

        pub fn locate_or_parent(text: &str, path: &str) -> Option<Location> {
            let mut segments = parse_path(path)?;
            let tokens = tokenize(text);
            while !segments.is_empty() {
                if let Some(i) = find(&tokens, &segments) {
                    return Some(tokens[i].loc);
                }
                segments.pop();
            }
            None
        }
    }

    /// Every path in `paths`, located by one shared [`Locator`] and by the
    /// reference one text-scan per path, must give the same answers.
    fn assert_same_as_reference(text: &str, paths: &[String]) {
        let locator = Locator::new(text);
        for p in paths {
            assert_eq!(
                locator.locate(p),
                reference::locate(text, p),
                "locate({p:?}) in {text:?}"
            );
            assert_eq!(
                locator.locate_or_parent(p),
                reference::locate_or_parent(text, p),
                "locate_or_parent({p:?}) in {text:?}"
            );
        }
    }

    fn loc(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }

    #[test]
    fn config_locate_parse_path() {
        use Segment::*;
        assert_eq!(
            parse_path("services[1].real_servers[0].weight"),
            Some(vec![
                Field("services".into()),
                Index(1),
                Field("real_servers".into()),
                Index(0),
                Field("weight".into())
            ])
        );
        assert_eq!(
            parse_path("a[1][2]"),
            Some(vec![Field("a".into()), Index(1), Index(2)])
        );
        assert_eq!(parse_path("a[x]"), None);
        assert_eq!(parse_path("a[1"), None);
        assert_eq!(parse_path("a..b"), None);
        assert_eq!(parse_path(""), Some(vec![]));
    }

    const TRICKY: &str = r##"#![enable(implicit_some)]
// services: [ (vip: "1.1.1.1") ]
/* block /* nested ( [ { */ still comment ] */
Config(
    eal: (cores: "0-1", extra_args: ["--log-level=[x]", r#"a "quoted" ("#, '(' ]),
    ports: [
        (name: "lan0", device: "net_x,iface=(eth0", address: "1.2.3.4/24"),
    ],
    services: [
        (vip: "1.1.1.1", port: 80, real_servers: [(address: "2.2.2.2"), (address: "2.2.2.3",
            weight: 7)]),
        ( // a comment in the way
          vip: "1.1.1.2", port: 81,
          real_servers: [
            (address: "3.3.3.3", /* ] */ weight: 70000),
          ],
        ),
    ],
    nested: [[1, 2], [3, [4, 5]], []],
    map: { "key": (inner: 1), other: 2 },
    opt: Some((deep: 1)),
)
"##;

    /// The location of the first occurrence of `needle` in `text`.
    fn at(text: &str, needle: &str) -> Option<Location> {
        let i = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in text"));
        let before = &text[..i];
        Some(Location {
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().unwrap().chars().count() + 1,
        })
    }

    #[test]
    fn config_locate_tricky_text() {
        let t = TRICKY;
        assert_eq!(locate(t, "eal"), at(t, "eal:"));
        assert_eq!(locate(t, "eal"), loc(5, 5));
        assert_eq!(locate(t, "eal.cores"), at(t, "cores"));
        assert_eq!(locate(t, "eal.extra_args[1]"), at(t, "r#\"a"));
        assert_eq!(locate(t, "eal.extra_args[2]"), at(t, "'(' ]"));
        assert_eq!(locate(t, "ports[0].address"), at(t, "address: \"1.2.3.4"));
        assert_eq!(
            locate(t, "services[0].real_servers[1]"),
            at(t, "(address: \"2.2.2.3")
        );
        assert_eq!(
            locate(t, "services[0].real_servers[1].weight"),
            at(t, "weight: 7")
        );
        assert_eq!(locate(t, "services[0].real_servers[1].weight"), loc(11, 13));
        assert_eq!(locate(t, "services[1]"), at(t, "( // a comment"));
        assert_eq!(locate(t, "services[1].vip"), at(t, "vip: \"1.1.1.2"));
        assert_eq!(
            locate(t, "services[1].real_servers[0].weight"),
            at(t, "weight: 70000")
        );
        assert_eq!(locate(t, "services[2]"), None);
        assert_eq!(locate(t, "nested[1][1][0]"), at(t, "4, 5"));
        assert_eq!(locate(t, "nested[2]"), at(t, "[]]"));
        assert_eq!(locate(t, "nested[2][0]"), None);
        assert_eq!(locate(t, "map.key.inner"), at(t, "inner"));
        assert_eq!(locate(t, "map.other"), at(t, "other"));
        assert_eq!(locate(t, "opt.deep"), at(t, "deep"));
        assert_eq!(locate(t, "timeouts"), None);
        assert_eq!(locate(t, "ports[0].name.x"), None);
    }

    #[test]
    fn config_locate_falls_back_to_parent() {
        let t = TRICKY;
        assert_eq!(
            locate_or_parent(t, "services[0].real_servers[0].weight"),
            at(t, "(address: \"2.2.2.2")
        );
        assert_eq!(
            locate_or_parent(t, "services[1].scheduler"),
            at(t, "( // a comment")
        );
        assert_eq!(locate_or_parent(t, "timeouts.udp"), None);
        assert_eq!(locate_or_parent(t, "ports[0].mac"), at(t, "(name: \"lan0"));
        assert_eq!(locate_or_parent(t, "ports[3].mac"), at(t, "ports"));
    }

    #[test]
    fn config_locate_without_struct_name_and_unicode_columns() {
        let text = "(\n  a: \"é€\", b: [ (c: 1) ],\n)";
        assert_eq!(locate(text, "b"), loc(2, 12));
        assert_eq!(locate(text, "b[0].c"), loc(2, 18));
    }

    #[test]
    fn config_locate_broken_text() {
        assert_eq!(locate("(a: [1, 2", "a[1]"), loc(1, 9));
        assert_eq!(locate("(a: [1, 2)) ]", "a[0]"), loc(1, 6));
        assert_eq!(locate("(a: \"unterminated", "b"), None);
        assert_eq!(locate("/* never closed (a: 1)", "a"), None);
        assert_eq!(locate("", "a"), None);
        assert_eq!(locate("(a: 1)", ""), None);
        assert_eq!(locate("'", "a"), None);
        assert_eq!(locate("r#", "a"), None);
        assert_eq!(locate("b'\\", "a"), None);
    }

    proptest! {
        #[test]
        fn config_locate_never_panics(text in "\\PC*", path in "[a-z_\\[\\]0-9.]{0,20}") {
            let _ = locate(&text, &path);
            let _ = locate_or_parent(&text, &path);
        }

        #[test]
        fn config_locate_never_panics_on_ron_like_text(
            text in "[()\\[\\]{}:,\"'#!/*rb\\\\a-c0-9 \n_-]{0,80}",
            path in "(a|b|c)(\\[[0-3]\\])?(\\.(a|b|c)(\\[[0-3]\\])?){0,3}",
        ) {
            let _ = locate(&text, &path);
            let _ = locate_or_parent(&text, &path);
        }

        #[test]
        fn config_locate_index_agrees_with_reference_on_ron_like_text(
            text in "[()\\[\\]{}:,\"'#!/*rb\\\\a-c0-9 \n_-]{0,120}",
            paths in prop::collection::vec(
                "(a|b|c)(\\[[0-3]\\])?(\\.(a|b|c)(\\[[0-3]\\])?){0,3}", 1..8),
        ) {
            assert_same_as_reference(&text, &paths);
        }

        #[test]
        fn config_locate_index_agrees_with_reference_on_ron_values(
            text in ron_text(),
            paths in prop::collection::vec(
                "(a|b|c)(\\[[0-3]\\]){0,2}(\\.(a|b|c)(\\[[0-3]\\]){0,2}){0,4}", 1..12),
        ) {
            assert_same_as_reference(&text, &paths);
        }

        #[test]
        fn config_locate_index_agrees_with_reference_on_tricky_text(
            paths in prop::collection::vec(
                "(eal|cores|extra_args|ports|name|address|services|vip|real_servers|weight|\
                  nested|map|key|inner|other|opt|deep)(\\[[0-3]\\]){0,3}\
                  (\\.(eal|cores|extra_args|ports|name|address|services|vip|real_servers|\
                  weight|nested|map|key|inner|other|opt|deep)(\\[[0-3]\\]){0,3}){0,3}",
                1..12),
        ) {
            assert_same_as_reference(TRICKY, &paths);
        }
    }

    /// A RON-ish document: a top-level struct with fields a, b and c
    /// holding [`ron_value`]s, sometimes after an attribute.
    fn ron_text() -> impl Strategy<Value = String> {
        (any::<bool>(), ron_value(), ron_value(), ron_value()).prop_map(|(attr, a, b, c)| {
            format!(
                "{}Config(a: {a}, b: {b},\n c: {c})",
                if attr {
                    "#![enable(implicit_some)]\n"
                } else {
                    ""
                }
            )
        })
    }

    /// RON-ish values: structs (named or not) with fields a, b and c, lists,
    /// maps, `Some(...)`, strings holding brackets and commas, numbers and
    /// comments, laid out with random spacing.
    fn ron_value() -> impl Strategy<Value = String> {
        let space = prop_oneof![
            Just(""),
            Just(" "),
            Just("\n  "),
            Just(" /* ( , ] */ "),
            Just(" // ) ,\n")
        ];
        let leaf = prop_oneof![
            Just("1".to_string()),
            Just("\"a, (b]\"".to_string()),
            Just("r#\"c\"#".to_string()),
            Just("'('".to_string()),
            Just("None".to_string()),
            Just("Tcp".to_string()),
        ];
        let field = prop_oneof![Just("a"), Just("b"), Just("c"), Just("\"a\""), Just("r#b")];
        leaf.prop_recursive(4, 48, 5, move |inner| {
            let item = (space.clone(), inner.clone(), space.clone())
                .prop_map(|(s1, v, s2)| format!("{s1}{v}{s2}"));
            let entry = (field.clone(), space.clone(), inner.clone())
                .prop_map(|(f, s, v)| format!("{f}:{s}{v}"));
            prop_oneof![
                (prop::collection::vec(item, 0..5), any::<bool>()).prop_map(|(xs, trailing)| {
                    format!("[{}{}]", xs.join(","), if trailing { "," } else { "" })
                }),
                (
                    prop_oneof![Just(""), Just("Config"), Just("Some")],
                    prop::collection::vec(entry.clone(), 0..4),
                    any::<bool>()
                )
                    .prop_map(|(name, xs, trailing)| {
                        format!(
                            "{name}({}{})",
                            xs.join(", "),
                            if trailing { "," } else { "" }
                        )
                    }),
                prop::collection::vec(entry, 0..3).prop_map(|xs| format!("{{{}}}", xs.join(","))),
                inner.prop_map(|v| format!("Some({v})")),
            ]
        })
    }

    /// A configuration whose `n` real servers all have an out-of-range
    /// weight, one per line: real server `i` is on line `FIRST_RS_LINE + i`,
    /// its `weight` in column [`WEIGHT_COLUMN`].
    fn many_bad_weights(n: usize) -> String {
        let mut t = String::from(
            "(\n    eal: (cores: \"0-1\"),\n    \
             ports: [(name: \"lan0\", device: \"net_null0\", address: \"198.18.0.2/15\")],\n    \
             services: [(vip: \"198.18.0.100\", port: 80, real_servers: [\n",
        );
        for i in 0..n {
            t.push_str(&format!(
                "        (weight: 70000, address: \"198.19.{}.{}\"),\n",
                i / 250,
                1 + i % 250
            ));
        }
        t.push_str("    ])],\n)\n");
        t
    }
    const FIRST_RS_LINE: usize = 5;
    const WEIGHT_COLUMN: usize = 10;

    fn problems_of(text: &str) -> Vec<crate::config::Problem> {
        match crate::config::parse(text, "many.ron") {
            Err(crate::config::ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    #[test]
    fn config_locate_many_problems_as_before() {
        // On a file small enough for the old one-scan-per-problem locator,
        // every problem is where that locator put it.
        let text = many_bad_weights(300);
        let problems = problems_of(&text);
        assert_eq!(problems.len(), 300, "{:?}", &problems[..3]);
        for p in &problems {
            let old = reference::locate_or_parent(&text, &p.field);
            assert_eq!(
                (p.line, p.column),
                (old.map(|l| l.line), old.map(|l| l.column)),
                "{p}"
            );
        }
    }

    #[test]
    fn config_locate_4000_problems_in_one_tokenizer_pass() {
        let text = many_bad_weights(4000);
        let before = tokenize_passes();
        let problems = problems_of(&text);
        // Tokenised once for all problems, not once per problem.
        assert_eq!(tokenize_passes() - before, 1);
        assert_eq!(problems.len(), 4000);
        for (i, p) in problems.iter().enumerate() {
            assert_eq!(p.field, format!("services[0].real_servers[{i}].weight"));
            assert_eq!(
                (p.line, p.column),
                (Some(FIRST_RS_LINE + i), Some(WEIGHT_COLUMN)),
                "{p}"
            );
        }
    }
}
