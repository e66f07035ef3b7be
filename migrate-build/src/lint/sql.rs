//! Just enough of a migration's statements for the lint: tokens, and what
//! kind of statement each is (drop, rename, update, delete, other DDL).

/// One token of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A keyword or a bare name, as written.
    Word(String),
    /// A quoted name (`"x"`, `` `x` ``, `[x]`), without its quotes.
    Name(String),
    /// A string literal.
    Str,
    /// Any other character.
    Punct(char),
}

impl Tok {
    /// Whether this is the keyword `kw` (any letter case).
    pub(crate) fn is(&self, kw: &str) -> bool {
        matches!(self, Self::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// The name this token spells, quoted or not.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Self::Word(w) | Self::Name(w) => Some(w),
            _ => None,
        }
    }
}

/// The tokens of `text`, comments left out.
pub(crate) fn tokens(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut s = String::new();
                i += 1;
                while i < chars.len() {
                    if chars[i] == close {
                        if close != ']' && chars.get(i + 1) == Some(&close) {
                            s.push(close);
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                i += 1;
                out.push(if c == '\'' { Tok::Str } else { Tok::Name(s) });
            }
            _ if c.is_alphanumeric() || c == '_' => {
                let from = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    i += 1;
                }
                out.push(Tok::Word(chars[from..i].iter().collect()));
            }
            _ => {
                out.push(Tok::Punct(c));
                i += 1;
            }
        }
    }
    out
}

/// What a statement does, as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `DROP TABLE t`.
    DropTable(String),
    /// `ALTER TABLE t RENAME TO u`.
    RenameTable { from: String, to: String },
    /// `ALTER TABLE t RENAME [COLUMN] a TO b`.
    RenameColumn { table: String, from: String, to: String },
    /// `ALTER TABLE t DROP [COLUMN] c`.
    DropColumn { table: String, column: String },
    /// `UPDATE t …` or `DELETE FROM t …`, and whether it has a `WHERE`
    /// of its own (not one inside a subquery).
    Write {
        verb: &'static str,
        table: String,
        filtered: bool,
    },
    /// Another `CREATE`, `ALTER` or `DROP`.
    Ddl,
    /// Anything else (`INSERT`, `SELECT`, `PRAGMA`…).
    Other,
}

/// One statement of a migration: its line, tokens and kind.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    /// 1-based line of its first token.
    pub(crate) line: usize,
    /// Its tokens.
    pub(crate) toks: Vec<Tok>,
    /// What it does.
    pub(crate) kind: Kind,
}

impl Statement {
    /// The statement `text` at `line`.
    pub(crate) fn new(line: usize, text: &str) -> Self {
        Self::of_tokens(line, tokens(text))
    }

    /// The statement at `line` made of `toks` (a PostgreSQL statement,
    /// which its own tokenizer reads).
    pub(crate) fn of_tokens(line: usize, toks: Vec<Tok>) -> Self {
        let kind = kind(&toks);
        Self { line, toks, kind }
    }

    /// Whether any token names `name` (any letter case).
    pub(crate) fn names(&self, name: &str) -> bool {
        self.toks
            .iter()
            .any(|t| t.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }

    /// Whether the statement starts with these keywords.
    pub(crate) fn starts(&self, kws: &[&str]) -> bool {
        kws.len() <= self.toks.len() && kws.iter().zip(&self.toks).all(|(k, t)| t.is(k))
    }

    /// Whether no rule can fire on this statement whatever the schema:
    /// it only adds something that cannot fail on existing rows or point
    /// at what is missing (`CREATE TABLE`, `VIEW`, `TRIGGER`, a non-unique
    /// `INDEX`, `ADD COLUMN`, without `REFERENCES` or `CHECK`), or only
    /// reads or inserts (`SELECT`, `INSERT`).
    pub(crate) fn only_adds(&self) -> bool {
        // A new table's own constraints hold on its rows; a foreign key may
        // point at nothing, and a unique index or a CHECK on a column added
        // to an existing table meets its rows.
        let references = self.toks.iter().any(|t| t.is("REFERENCES"));
        let constrains = self.toks.iter().any(|t| t.is("CHECK") || t.is("UNIQUE"));
        let risky = references || (constrains && !self.starts(&["CREATE", "TABLE"]));
        let creates = self.starts(&["CREATE"])
            && self
                .toks
                .iter()
                .take(5)
                .any(|t| t.is("TABLE") || t.is("VIEW") || t.is("TRIGGER") || t.is("INDEX"));
        let adds_column =
            matches!(self.kind, Kind::Ddl) && self.starts(&["ALTER", "TABLE"]) && self.toks.iter().any(|t| t.is("ADD"));
        let trigger = self.starts(&["CREATE", "TRIGGER"])
            || self.starts(&["CREATE", "TEMP", "TRIGGER"])
            || self.starts(&["CREATE", "TEMPORARY", "TRIGGER"]);
        trigger || ((creates || adds_column) && !risky) || self.starts(&["SELECT"]) || self.starts(&["INSERT"])
    }

    /// The table an `ALTER TABLE` changes.
    pub(crate) fn altered_table(&self) -> Option<String> {
        alter_target(&self.toks).map(|(t, _)| t)
    }

    /// Whether the statement adds a column (`ADD [COLUMN] c`, not `ADD
    /// CONSTRAINT`).
    pub(crate) fn adds_column(&self) -> bool {
        const CONSTRAINTS: &[&str] = &["CONSTRAINT", "CHECK", "UNIQUE", "PRIMARY", "FOREIGN", "EXCLUDE"];
        self.toks
            .windows(2)
            .any(|w| w[0].is("ADD") && !CONSTRAINTS.iter().any(|c| w[1].is(c)))
    }

    /// The table a `CREATE TRIGGER` is on.
    pub(crate) fn trigger_table(&self) -> Option<String> {
        if !self.starts(&["CREATE"]) || !self.toks.iter().take(5).any(|t| t.is("TRIGGER")) {
            return None;
        }
        let on = self.toks.iter().position(|t| t.is("ON"))?;
        qualified(&self.toks, on + 1).map(|(t, _)| t)
    }

    /// The table or view a `CREATE [TEMP] TABLE|VIEW [IF NOT EXISTS]` makes.
    pub(crate) fn created(&self) -> Option<String> {
        if !self.starts(&["CREATE"]) {
            return None;
        }
        let at = self.toks.iter().take(4).position(|t| t.is("TABLE") || t.is("VIEW"))?;
        let at = if self.toks.get(at + 1).is_some_and(|t| t.is("IF")) {
            at + 4
        } else {
            at + 1
        };
        qualified(&self.toks, at).map(|(t, _)| t)
    }

    /// Whether the statement is a schema change (`CREATE`, `ALTER`, `DROP`).
    pub(crate) fn is_ddl(&self) -> bool {
        !matches!(self.kind, Kind::Write { .. } | Kind::Other)
    }
}

/// A possibly schema-qualified name at `at`: the name and the index after it.
fn qualified(toks: &[Tok], at: usize) -> Option<(String, usize)> {
    let first = toks.get(at)?.name()?;
    if toks.get(at + 1) == Some(&Tok::Punct('.')) {
        let second = toks.get(at + 2)?.name()?;
        return Some((second.to_owned(), at + 3));
    }
    Some((first.to_owned(), at + 1))
}

/// `ALTER TABLE [IF EXISTS] [ONLY] t` (PostgreSQL's `IF EXISTS` and
/// `ONLY`): the table and the index after it.
fn alter_target(toks: &[Tok]) -> Option<(String, usize)> {
    let is = |i: usize, kw: &str| toks.get(i).is_some_and(|t| t.is(kw));
    if !(is(0, "ALTER") && is(1, "TABLE")) {
        return None;
    }
    let mut at = 2;
    if is(at, "IF") && is(at + 1, "EXISTS") {
        at += 2;
    }
    if is(at, "ONLY") {
        at += 1;
    }
    qualified(toks, at)
}

fn kind(toks: &[Tok]) -> Kind {
    let is = |i: usize, kw: &str| toks.get(i).is_some_and(|t| t.is(kw));
    let name_at = |i: usize| toks.get(i).and_then(Tok::name).map(str::to_owned);
    if is(0, "DROP") && is(1, "TABLE") {
        let at = if is(2, "IF") && is(3, "EXISTS") { 4 } else { 2 };
        return qualified(toks, at).map_or(Kind::Ddl, |(t, _)| Kind::DropTable(t));
    }
    if is(0, "ALTER") && is(1, "TABLE") {
        let Some((table, at)) = alter_target(toks) else {
            return Kind::Ddl;
        };
        if is(at, "RENAME") {
            if is(at + 1, "TO") {
                return name_at(at + 2).map_or(Kind::Ddl, |to| Kind::RenameTable { from: table, to });
            }
            let col = if is(at + 1, "COLUMN") { at + 2 } else { at + 1 };
            if let (Some(from), true, Some(to)) = (name_at(col), is(col + 1, "TO"), name_at(col + 2)) {
                return Kind::RenameColumn { table, from, to };
            }
        }
        if is(at, "DROP") && !is(at + 1, "CONSTRAINT") {
            let mut col = if is(at + 1, "COLUMN") { at + 2 } else { at + 1 };
            if is(col, "IF") && is(col + 1, "EXISTS") {
                col += 2;
            }
            if let Some(column) = name_at(col) {
                return Kind::DropColumn { table, column };
            }
        }
        return Kind::Ddl;
    }
    if is(0, "CREATE") || is(0, "ALTER") || is(0, "DROP") {
        return Kind::Ddl;
    }
    // `WITH … UPDATE|DELETE`: the verb is the first one outside parentheses.
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            _ if t.is("UPDATE") || t.is("DELETE") => {
                let verb = if t.is("UPDATE") { "UPDATE" } else { "DELETE" };
                let mut at = i + 1;
                if verb == "DELETE" && is(at, "FROM") {
                    at += 1;
                }
                if verb == "UPDATE" && is(at, "OR") {
                    at += 2;
                }
                if is(at, "ONLY") && !is(at + 1, "SET") && !is(at + 1, "WHERE") {
                    at += 1;
                }
                let Some((table, rest)) = qualified(toks, at) else {
                    return Kind::Other;
                };
                return Kind::Write {
                    verb,
                    table,
                    filtered: has_own_where(&toks[rest..]),
                };
            }
            _ if i == 0 && !t.is("WITH") => return Kind::Other,
            _ => {}
        }
    }
    Kind::Other
}

/// Whether `WHERE` appears outside parentheses.
fn has_own_where(toks: &[Tok]) -> bool {
    let mut depth = 0usize;
    toks.iter().any(|t| {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        depth == 0 && t.is("WHERE")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(sql: &str) -> Kind {
        Statement::new(1, sql).kind
    }

    #[test]
    fn kinds() {
        assert_eq!(k("DROP TABLE IF EXISTS main.\"t\";"), Kind::DropTable("t".into()));
        assert_eq!(
            k("alter table t rename to u;"),
            Kind::RenameTable {
                from: "t".into(),
                to: "u".into()
            }
        );
        assert_eq!(
            k("ALTER TABLE t RENAME a TO b;"),
            Kind::RenameColumn {
                table: "t".into(),
                from: "a".into(),
                to: "b".into()
            }
        );
        assert_eq!(
            k("ALTER TABLE [t] DROP COLUMN `c`;"),
            Kind::DropColumn {
                table: "t".into(),
                column: "c".into()
            }
        );
        assert_eq!(
            k("UPDATE t SET x = (SELECT y FROM u WHERE u.id = t.id);"),
            Kind::Write {
                verb: "UPDATE",
                table: "t".into(),
                filtered: false
            }
        );
        assert_eq!(
            k("WITH d AS (SELECT 1) DELETE FROM t WHERE x IN d; -- WHERE"),
            Kind::Write {
                verb: "DELETE",
                table: "t".into(),
                filtered: true
            }
        );
        assert_eq!(
            k("UPDATE OR IGNORE t SET a = 'WHERE';"),
            Kind::Write {
                verb: "UPDATE",
                table: "t".into(),
                filtered: false
            }
        );
        assert_eq!(
            k("CREATE TRIGGER x AFTER INSERT ON t BEGIN DELETE FROM u; END;"),
            Kind::Ddl
        );
        assert_eq!(k("INSERT INTO t SELECT * FROM u;"), Kind::Other);
    }

    #[test]
    fn what_only_adds() {
        let adds = |sql: &str| Statement::new(1, sql).only_adds();
        assert!(adds(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE CHECK (a <> ''));"
        ));
        assert!(adds("CREATE INDEX i ON t (a);"));
        assert!(adds("ALTER TABLE t ADD COLUMN b INT;"));
        assert!(adds("INSERT INTO t VALUES (1);"));
        assert!(!adds("CREATE TABLE c (p REFERENCES t (id));"));
        assert!(!adds("CREATE UNIQUE INDEX i ON t (a);"));
        assert!(!adds("ALTER TABLE t ADD COLUMN b INT CHECK (b > 0);"));
        assert!(!adds("ALTER TABLE t DROP COLUMN b;"));
        assert!(!adds("DELETE FROM t;"));
        assert!(!adds("PRAGMA writable_schema = 1;"));
    }
}
