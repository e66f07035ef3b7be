#![cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
//! A small tokenizer for what only the `CREATE` statements say: column
//! collations, CHECK constraints, `DEFERRABLE`, index expressions and
//! `WHERE`; and the normalization that makes two spellings of one
//! statement compare equal.

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// A keyword or unquoted name, lower-cased.
    Word(String),
    /// A quoted name, its content lower-cased.
    Quoted(String),
    /// A string literal, as written (quotes included).
    Str(String),
    /// Anything else: numbers, operators, parentheses, commas.
    Punct(String),
}

impl Tok {
    pub(super) fn text(&self) -> String {
        match self {
            Self::Word(w) => w.clone(),
            Self::Quoted(q) => format!("\"{}\"", q.replace('"', "\"\"")),
            Self::Str(s) | Self::Punct(s) => s.clone(),
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self, Self::Word(x) if x == w)
    }

    fn is(&self, p: &str) -> bool {
        matches!(self, Self::Punct(x) if x == p)
    }

    /// A name, whether quoted or not.
    fn name(&self) -> Option<&str> {
        match self {
            Self::Word(w) | Self::Quoted(w) => Some(w),
            _ => None,
        }
    }
}

pub(super) fn tokens(sql: &str) -> Vec<Tok> {
    tokens_folding(sql, true)
}

/// [`tokens`], keeping the letter case of quoted names unless
/// `fold_quoted` (SQLite ignores it; PostgreSQL does not).
pub(super) fn tokens_folding(sql: &str, fold_quoted: bool) -> Vec<Tok> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b'\x0b' {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
        } else if matches!(c, b'\'' | b'"' | b'`' | b'[') {
            let from = i;
            i = closing_quote(b, i);
            let end = (i + 1).min(b.len());
            let inner = &sql[from + 1..i.min(b.len())];
            i = end;
            if c == b'\'' {
                out.push(Tok::Str(sql[from..end].to_owned()));
            } else {
                let content = match c {
                    b'"' => inner.replace("\"\"", "\""),
                    b'`' => inner.replace("``", "`"),
                    _ => inner.to_owned(),
                };
                out.push(Tok::Quoted(if fold_quoted { content.to_lowercase() } else { content }));
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let from = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Tok::Word(sql[from..i].to_lowercase()));
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let from = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Punct(sql[from..i].to_ascii_lowercase()));
        } else {
            let two = sql.get(i..i + 2).unwrap_or("");
            let len = if matches!(two, "<=" | ">=" | "<>" | "!=" | "==" | "||" | "<<" | ">>" | "->") {
                2
            } else {
                sql[i..].chars().next().map_or(1, char::len_utf8)
            };
            out.push(Tok::Punct(sql[i..i + len].to_owned()));
            i += len;
        }
    }
    out
}

#[cfg(test)]
fn join(toks: &[Tok]) -> String {
    let mut s = String::new();
    for (i, t) in toks.iter().enumerate() {
        let text = t.text();
        let tight = i == 0
            || t.is(")")
            || t.is(",")
            || t.is(";")
            || t.is(".")
            || t.is("(")
            || toks[i - 1].is("(")
            || toks[i - 1].is(".");
        if !tight {
            s.push(' ');
        }
        s.push_str(&text);
    }
    s
}

/// `sql` with its spacing, comments, keyword case and name quoting made
/// uniform, so two spellings of one statement compare equal. String
/// literals are kept as written.
pub fn normalize(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    normalize_into(sql, &mut out);
    out
}

/// [`normalize`], appended to `out`, without allocating per token (the
/// start-up drift check normalizes every `CREATE` statement of the
/// database). Tokenizes as [`tokens`] does; [`normalize_by_tokens`], in the
/// tests, is the definition it is checked against.
pub(super) fn normalize_into(sql: &str, out: &mut String) {
    let b = sql.as_bytes();
    let start = out.len();
    // Whether the previous token was `(` or `.` (no space after them), and
    // where a `;` just written began (a final one is dropped).
    let mut after_open = true;
    let mut semicolon_at: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b'\x0b' {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
            continue;
        }
        let space = |out: &mut String, tight: bool| {
            if out.len() > start && !tight {
                out.push(' ');
            }
        };
        if matches!(c, b'\'' | b'"' | b'`' | b'[') {
            let from = i;
            i = closing_quote(b, i);
            let end = (i + 1).min(b.len());
            let inner = &sql[from + 1..i.min(b.len())];
            i = end;
            space(out, after_open);
            if c == b'\'' {
                out.push_str(&sql[from..end]);
            } else {
                push_quoted(inner, c, out);
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let from = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
                i += 1;
            }
            space(out, after_open);
            push_lower(&sql[from..i], out);
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let from = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            space(out, after_open);
            out.extend(sql[from..i].chars().map(|c| c.to_ascii_lowercase()));
        } else {
            let two = sql.get(i..i + 2).unwrap_or("");
            let len = if matches!(two, "<=" | ">=" | "<>" | "!=" | "==" | "||" | "<<" | ">>" | "->") {
                2
            } else {
                sql[i..].chars().next().map_or(1, char::len_utf8)
            };
            let p = &sql[i..i + len];
            i += len;
            // No space before these, nor after `(` and `.`.
            space(out, after_open || matches!(p, ")" | "," | ";" | "." | "("));
            semicolon_at = (p == ";").then_some(out.len());
            out.push_str(p);
            after_open = matches!(p, "(" | ".");
            continue;
        }
        semicolon_at = None;
        after_open = false;
    }
    if let Some(at) = semicolon_at {
        out.truncate(at);
    }
}

/// A quoted name's content (`inner`, quoted by `quote`), unescaped and
/// lower-cased: bare when it is a plain name (quoting does not change
/// it), else in double quotes.
fn push_quoted(inner: &str, quote: u8, out: &mut String) {
    let doubled = match quote {
        b'"' => Some("\"\""),
        b'`' => Some("``"),
        _ => None,
    };
    let plain = !inner.is_empty()
        && !inner.as_bytes()[0].is_ascii_digit()
        && inner
            .bytes()
            .all(|c| c.is_ascii_alphabetic() || c.is_ascii_digit() || c == b'_');
    if plain {
        // Upper-case ASCII lower-cases to a plain name as well.
        push_lower(inner, out);
        return;
    }
    let content = match doubled {
        Some(d) if inner.contains(d) => inner.replace(d, &d[..1]),
        _ => inner.to_owned(),
    }
    .to_lowercase();
    let plain = !content.is_empty()
        && !content.as_bytes()[0].is_ascii_digit()
        && content
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if plain {
        out.push_str(&content);
    } else {
        out.push('"');
        out.push_str(&content.replace('"', "\"\""));
        out.push('"');
    }
}

/// `word` lower-cased (Unicode, as `str::to_lowercase`), appended.
fn push_lower(word: &str, out: &mut String) {
    if word.is_ascii() {
        let from = out.len();
        out.push_str(word);
        out[from..].make_ascii_lowercase();
    } else {
        out.push_str(&word.to_lowercase());
    }
}

/// The definition [`normalize_into`] is tested against: tokens, then the
/// joining rules.
#[cfg(test)]
pub(super) fn normalize_by_tokens(sql: &str) -> String {
    let mut toks = tokens(sql);
    if toks.last().is_some_and(|t| t.is(";")) {
        toks.pop();
    }
    // Quoting a plain name does not change it.
    for t in &mut toks {
        if let Tok::Quoted(q) = t
            && !q.is_empty()
            && q.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            && !q.as_bytes()[0].is_ascii_digit()
        {
            *t = Tok::Word(q.clone());
        }
    }
    join(&toks)
}

/// Splits `toks` at top-level commas.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0usize, 0);
    for (i, t) in toks.iter().enumerate() {
        if t.is("(") {
            depth += 1;
        } else if t.is(")") {
            depth = depth.saturating_sub(1);
        } else if t.is(",") && depth == 0 {
            parts.push(&toks[from..i]);
            from = i + 1;
        }
    }
    parts.push(&toks[from..]);
    parts
}

/// The index of the `)` that closes the `(` at `open`.
fn closing(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is("(") {
            depth += 1;
        } else if t.is(")") {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    toks.len()
}

/// What a `CREATE TABLE` says that the pragmas do not.
#[derive(Debug, Default)]
pub(super) struct Definition {
    /// (column, collation).
    pub(super) collations: Vec<(String, String)>,
    /// CHECK constraints, normalized, sorted.
    pub(super) checks: Vec<String>,
    /// Deferred foreign keys: (child columns, parent table).
    pub(super) deferred: Vec<(Vec<String>, String)>,
}

const CONSTRAINT_START: [&str; 5] = ["constraint", "primary", "unique", "check", "foreign"];

pub(super) fn parse_table(sql: &str) -> Definition {
    let toks = tokens(sql);
    let mut def = Definition::default();
    let Some(open) = toks.iter().position(|t| t.is("(")) else {
        return def;
    };
    let body = &toks[open + 1..closing(&toks, open).min(toks.len())];
    for part in split_commas(body) {
        let Some(first) = part.first() else { continue };
        let is_column = !matches!(first, Tok::Word(w) if CONSTRAINT_START.contains(&w.as_str()));
        let column = if is_column {
            first.name().map(str::to_owned)
        } else {
            None
        };
        let mut i = 0;
        while i < part.len() {
            let t = &part[i];
            if t.is_word("collate")
                && let (Some(col), Some(name)) = (&column, part.get(i + 1).and_then(Tok::name))
            {
                def.collations.push((col.clone(), name.to_owned()));
            }
            if t.is_word("check") && part.get(i + 1).is_some_and(|t| t.is("(")) {
                let end = closing(part, i + 1).min(part.len().saturating_sub(1));
                def.checks.push(normalize_toks(&part[i + 2..end]));
                i = end;
            }
            if t.is_word("references")
                && let Some(parent) = part.get(i + 1).and_then(Tok::name)
            {
                let rest = &part[i + 2..];
                let deferred = rest
                    .windows(3)
                    .any(|w| w[0].is_word("deferrable") && w[1].is_word("initially") && w[2].is_word("deferred"));
                let not_deferrable = rest
                    .windows(2)
                    .any(|w| w[0].is_word("not") && w[1].is_word("deferrable"));
                if deferred && !not_deferrable {
                    let cols = if let Some(col) = &column {
                        vec![col.clone()]
                    } else {
                        // FOREIGN KEY (a, b) REFERENCES …
                        part.iter()
                            .position(|t| t.is("("))
                            .map(|o| {
                                part[o + 1..closing(part, o).min(part.len())]
                                    .iter()
                                    .filter_map(|t| t.name().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    def.deferred.push((cols, parent.to_owned()));
                }
            }
            i += 1;
        }
    }
    def.checks.sort();
    def
}

pub(super) fn normalize_toks(toks: &[Tok]) -> String {
    let text: Vec<String> = toks.iter().map(Tok::text).collect();
    normalize(&text.join(" "))
}

/// What a `CREATE INDEX` says that the pragmas do not.
#[derive(Debug, Default)]
pub(super) struct IndexDefinition {
    /// Each key's text, normalized, without `ASC`/`DESC`/`COLLATE`.
    pub(super) expressions: Vec<String>,
    /// The `WHERE` condition, normalized.
    pub(super) partial: Option<String>,
}

pub(super) fn parse_index(sql: &str) -> IndexDefinition {
    let toks = tokens(sql);
    let Some(on) = toks.iter().position(|t| t.is_word("on")) else {
        return IndexDefinition::default();
    };
    let Some(open) = toks.iter().skip(on).position(|t| t.is("(")).map(|p| p + on) else {
        return IndexDefinition::default();
    };
    let close = closing(&toks, open);
    let expressions = split_commas(&toks[open + 1..close.min(toks.len())])
        .into_iter()
        .map(|mut part| {
            while let Some((last, rest)) = part.split_last() {
                if last.is_word("asc") || last.is_word("desc") {
                    part = rest;
                } else if rest.last().is_some_and(|t| t.is_word("collate")) {
                    part = &rest[..rest.len() - 1];
                } else {
                    break;
                }
            }
            normalize_toks(part)
        })
        .collect();
    let partial = toks
        .get(close + 1)
        .filter(|t| t.is_word("where"))
        .map(|_| normalize_toks(&toks[close + 2..]));
    IndexDefinition { expressions, partial }
}

/// The index of the quote that closes the quoted text opening at `open` (a
/// string `'…'`, a name `"…"`, `` `…` `` or `[…]`; a doubled quote inside
/// is part of the text), or `b.len()` when it is not closed. The one
/// quote scanner of the model and the CLI's SQL generation.
#[doc(hidden)]
pub fn closing_quote(b: &[u8], open: usize) -> usize {
    let close = if b[open] == b'[' { b']' } else { b[open] };
    let mut i = open + 1;
    while i < b.len() {
        if b[i] == close {
            if close != b']' && b.get(i + 1) == Some(&close) {
                i += 2;
                continue;
            }
            break;
        }
        i += 1;
    }
    i
}
