//! What a statement is, read from its tokens: its kind, and every rule it
//! breaks. [`super::check_statement`] decides which finding wins.
use super::{
    StatementKind,
    lexer::{Token, TokenKind},
};

/// Everything the guard found out about one statement.
#[derive(Debug)]
pub(super) struct Analysis {
    pub kind: StatementKind,
    /// The statement's leading keywords, for messages ("CREATE TABLE").
    pub what: String,
    /// Refused for every caller (StatementNotAllowed).
    pub not_allowed: Option<String>,
    /// Refused for every caller (InvalidRequest).
    pub invalid: Option<String>,
    /// It would change the transaction access mode (refused for read-only callers).
    pub leaves_read_only: bool,
    /// It is a read (allowed for read-only callers).
    pub read: bool,
    /// What commits the open transaction implicitly, if the statement does.
    pub commits: Option<String>,
    /// It installs or removes code the server runs later (procedures,
    /// functions, triggers, events, definer views): refused
    /// (StatementNotAllowed) unless the caller has the schema role.
    pub installs_code: Option<String>,
    /// Refused (InvalidRequest) unless the caller has the schema role
    /// (PREPARE, EXECUTE, DEALLOCATE).
    pub schema_only: Option<String>,
    /// A client's savepoint statement: allowed inside a transaction only.
    pub savepoint: bool,
    /// A stored program's definition, whose body may be compound
    /// (`BEGIN …; … END`): the schema role may send `;` inside it.
    pub has_body: bool,
}

impl Analysis {
    fn new(kind: StatementKind, what: impl Into<String>) -> Analysis {
        Analysis {
            kind,
            what: what.into(),
            not_allowed: None,
            invalid: None,
            leaves_read_only: false,
            read: false,
            commits: None,
            installs_code: None,
            schema_only: None,
            has_body: false,
            savepoint: false,
        }
    }

    fn read(mut self) -> Analysis {
        self.read = true;
        self
    }

    fn commits(mut self) -> Analysis {
        self.commits = Some(self.what.clone());
        self
    }

    fn not_allowed(mut self, why: &str) -> Analysis {
        let message = format!("{} is not allowed through the gateway: {why}", self.what);
        self.not_allowed.get_or_insert(message);
        self
    }

    fn invalid(mut self, message: &str) -> Analysis {
        self.invalid.get_or_insert_with(|| message.to_string());
        self
    }

    /// Takes in the findings of a statement nested in this one.
    fn absorb(&mut self, inner: Analysis) {
        self.not_allowed = self.not_allowed.take().or(inner.not_allowed);
        self.invalid = self.invalid.take().or(inner.invalid);
        self.commits = self.commits.take().or(inner.commits);
        self.installs_code = self.installs_code.take().or(inner.installs_code);
        self.schema_only = self.schema_only.take().or(inner.schema_only);
        self.leaves_read_only |= inner.leaves_read_only;
    }
}

const ADMINISTRATION: &str = "server administration is not available to clients";
const ACCOUNTS: &str = "account management is not available to clients";
const FILES: &str = "file access on the database server is not available to clients";

const TRANSACTION_CONTROL: &str = "transaction-control statements (BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, XA) are not allowed: use the Begin, Commit and Rollback RPCs";
const LOCKS: &str = "LOCK TABLES and UNLOCK TABLES are not allowed: they commit implicitly; use SELECT ... FOR UPDATE inside a transaction";
const USE: &str =
    "USE is not allowed: the gateway serves one database; qualify table names as db.table instead";
const PREPARE: &str =
    "server-side PREPARE/EXECUTE is not allowed: send the statement with `?` parameters instead";
const HANDLER: &str =
    "HANDLER is not allowed: it keeps tables open on the connection after the call; use SELECT";
const AUTOCOMMIT: &str = "changing autocommit or completion_type is not allowed: use the Begin, Commit and Rollback RPCs";
const CHARSET: &str = "the client character set must stay utf8mb4 (SET NAMES, SET CHARACTER SET and character_set_client accept utf8mb4, utf8mb3 or utf8 only): the gateway reads statements as UTF-8";
const CODE: &str = "installing or removing code the server runs later (procedures, functions, triggers, events, views that run with their definer's rights) is for principals with the schema role (see the README's roles table); a view with SQL SECURITY INVOKER is fine";
const LOAD_LOCAL: &str =
    "LOAD DATA LOCAL INFILE is not allowed: the gateway does not read client files";

/// Words that start a statement an EXPLAIN or ANALYZE can run.
const STATEMENT_STARTS: [&str; 8] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "TABLE", "WITH", "VALUES",
];

/// Words that name what CREATE, ALTER and DROP act on.
const OBJECTS: [&str; 21] = [
    "DATABASE",
    "SCHEMA",
    "TABLE",
    "TABLES",
    "INDEX",
    "VIEW",
    "TRIGGER",
    "PROCEDURE",
    "FUNCTION",
    "EVENT",
    "SEQUENCE",
    "USER",
    "ROLE",
    "SERVER",
    "TABLESPACE",
    "LOGFILE",
    "PACKAGE",
    "PREPARE",
    "INSTANCE",
    "RESOURCE",
    "UNDO",
];

/// Analyzes one statement (its tokens, without the trailing `;`).
pub(super) fn analyze(tokens: &[Token]) -> Analysis {
    let mut analysis = statement(tokens);
    // Anywhere in the statement, nested ones included.
    for (i, token) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1);
        let found = match token.word() {
            Some("INTO") => match next.and_then(Token::word) {
                Some(target @ ("OUTFILE" | "DUMPFILE")) => Some((format!("INTO {target}"), FILES)),
                _ => None,
            },
            Some("LOAD_FILE") if next.is_some_and(|t| t.is_punct("(")) => {
                Some(("the LOAD_FILE() function".to_string(), FILES))
            }
            Some("SONAME") => Some((
                "loading a server library (SONAME)".to_string(),
                ADMINISTRATION,
            )),
            _ => None,
        };
        if let Some((what, why)) = found {
            analysis
                .not_allowed
                .get_or_insert(format!("{what} is not allowed through the gateway: {why}"));
        }
    }
    analysis
}

fn word(tokens: &[Token], i: usize) -> &str {
    tokens.get(i).and_then(Token::word).unwrap_or("")
}

/// The leading keyword and, when it is a word, the next one ("START SLAVE").
fn two_words(tokens: &[Token]) -> String {
    format!("{} {}", word(tokens, 0), word(tokens, 1))
        .trim_end()
        .to_string()
}

fn statement(tokens: &[Token]) -> Analysis {
    // `(SELECT …) UNION (SELECT …)`
    let start = tokens
        .iter()
        .position(|t| !t.is_punct("("))
        .unwrap_or(tokens.len());
    let t = &tokens[start..];
    let first = word(t, 0);
    use StatementKind::*;
    match first {
        "SELECT" | "VALUES" | "TABLE" | "SHOW" | "HELP" => Analysis::new(Read, first).read(),
        "WITH" => with(t),
        "EXPLAIN" | "DESCRIBE" | "DESC" => explain(t),
        "ANALYZE" => analyze_statement(t),
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" => Analysis::new(Write, first),
        "CALL" => Analysis::new(Call, first),
        "SET" => set(t),
        "CREATE" | "ALTER" | "DROP" => ddl(t),
        "RENAME" if word(t, 1) == "USER" => Analysis::new(Ddl, "RENAME USER").not_allowed(ACCOUNTS),
        "RENAME" | "TRUNCATE" | "IMPORT" => Analysis::new(Ddl, format!("{first} TABLE")).commits(),
        "CHECK" | "OPTIMIZE" | "REPAIR" => Analysis::new(Other, format!("{first} TABLE")).commits(),
        "CACHE" => Analysis::new(Other, "CACHE INDEX").commits(),
        "LOAD" => match word(t, 1) {
            "INDEX" => Analysis::new(Other, "LOAD INDEX INTO CACHE").commits(),
            _ if t.iter().any(|t| t.word() == Some("LOCAL")) => {
                Analysis::new(Other, "LOAD DATA LOCAL").not_allowed_message(LOAD_LOCAL)
            }
            _ => Analysis::new(Other, two_words(t)).not_allowed(FILES),
        },
        "KILL" | "SHUTDOWN" | "FLUSH" | "BINLOG" => {
            Analysis::new(Other, first).not_allowed(ADMINISTRATION)
        }
        "INSTALL" | "UNINSTALL" | "CHANGE" | "STOP" | "RESET" | "PURGE" => {
            Analysis::new(Other, two_words(t)).not_allowed(ADMINISTRATION)
        }
        "START" if word(t, 1) == "TRANSACTION" => {
            Analysis::new(Other, "START TRANSACTION").invalid(TRANSACTION_CONTROL)
        }
        "START" => Analysis::new(Other, two_words(t)).not_allowed(ADMINISTRATION),
        "GRANT" | "REVOKE" => Analysis::new(Other, first).not_allowed(ACCOUNTS),
        "SAVEPOINT" | "RELEASE" | "ROLLBACK" if savepoint_name(t).is_some() => savepoint(t),
        "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "XA" => {
            Analysis::new(Other, first).invalid(TRANSACTION_CONTROL)
        }
        "LOCK" | "UNLOCK" => Analysis::new(Other, two_words(t)).invalid(LOCKS),
        "BACKUP" if matches!(word(t, 1), "LOCK" | "UNLOCK") => {
            Analysis::new(Other, two_words(t)).invalid(LOCKS)
        }
        "BACKUP" => Analysis::new(Other, two_words(t)).not_allowed(ADMINISTRATION),
        "USE" => Analysis::new(Other, first).invalid(USE),
        "PREPARE" | "EXECUTE" | "DEALLOCATE" => {
            let mut analysis = Analysis::new(Other, first);
            analysis.schema_only = Some(PREPARE.to_string());
            analysis
        }
        "HANDLER" => Analysis::new(Other, first).invalid(HANDLER),
        _ => Analysis::new(Other, first),
    }
}

/// The savepoint a `SAVEPOINT s`, `RELEASE SAVEPOINT s` or `ROLLBACK [WORK]
/// TO [SAVEPOINT] s` names, when the statement is exactly that.
fn savepoint_name(t: &[Token]) -> Option<&str> {
    let mut i = match word(t, 0) {
        "SAVEPOINT" => 1,
        "RELEASE" if word(t, 1) == "SAVEPOINT" => 2,
        "ROLLBACK" => {
            let mut i = 1;
            if word(t, i) == "WORK" {
                i += 1;
            }
            if word(t, i) != "TO" {
                return None;
            }
            i += 1;
            if word(t, i) == "SAVEPOINT" {
                i += 1;
            }
            i
        }
        _ => return None,
    };
    let name = t.get(i)?.word()?;
    i += 1;
    (i == t.len()).then_some(name)
}

/// A client's savepoint: fine inside a transaction (SQLAlchemy's
/// `begin_nested`, Django's nested `atomic`, Rails' `requires_new`); outside
/// one it means nothing (autocommit). The gateway's own savepoints
/// (`sqlgate_…`) are not the client's to name.
fn savepoint(t: &[Token]) -> Analysis {
    let name = savepoint_name(t).unwrap_or("");
    let what = match word(t, 0) {
        "SAVEPOINT" => "SAVEPOINT",
        "RELEASE" => "RELEASE SAVEPOINT",
        _ => "ROLLBACK TO SAVEPOINT",
    };
    let mut analysis = Analysis::new(StatementKind::Other, what).read();
    analysis.savepoint = true;
    if name.starts_with("SQLGATE_") {
        analysis = analysis.invalid(
            "savepoint names starting with sqlgate_ are the gateway's own: choose another name",
        );
    }
    analysis
}

impl Analysis {
    fn not_allowed_message(mut self, message: &str) -> Analysis {
        self.not_allowed.get_or_insert_with(|| message.to_string());
        self
    }
}

/// `WITH [RECURSIVE] name [(columns)] AS (…) [, …] <statement>`: the kind of
/// the statement after the common table expressions.
fn with(t: &[Token]) -> Analysis {
    let mut i = if word(t, 1) == "RECURSIVE" { 2 } else { 1 };
    loop {
        let mut depth = 0usize;
        let mut body = None;
        while i < t.len() {
            if t[i].is_punct("(") {
                depth += 1;
            } else if t[i].is_punct(")") {
                depth = depth.saturating_sub(1);
            } else if depth == 0
                && t[i].word() == Some("AS")
                && t.get(i + 1).is_some_and(|t| t.is_punct("("))
            {
                body = Some(i + 1);
                break;
            }
            i += 1;
        }
        let Some(open) = body else {
            return Analysis::new(StatementKind::Other, "WITH");
        };
        i = after_parentheses(t, open);
        if t.get(i).is_some_and(|t| t.is_punct(",")) {
            i += 1;
        } else {
            break;
        }
    }
    let mut inner = statement(&t[i..]);
    inner.what = format!("WITH … {}", inner.what);
    inner
}

/// The index after the `)` matching the `(` at `open`.
fn after_parentheses(t: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, token) in t.iter().enumerate().skip(open) {
        if token.is_punct("(") {
            depth += 1;
        } else if token.is_punct(")") {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    t.len()
}

/// The index of the first statement an EXPLAIN or ANALYZE runs, from `from`.
fn inner_statement(t: &[Token], from: usize) -> Option<usize> {
    (from..t.len())
        .find(|&i| t[i].is_punct("(") || t[i].word().is_some_and(|w| STATEMENT_STARTS.contains(&w)))
}

/// `EXPLAIN`/`DESCRIBE` show a plan (a read) unless `ANALYZE` makes them run
/// the statement.
fn explain(t: &[Token]) -> Analysis {
    let first = word(t, 0);
    let inner = inner_statement(t, 1);
    let executes = t[1..inner.unwrap_or(t.len())]
        .iter()
        .any(|t| t.word() == Some("ANALYZE"));
    if !executes {
        return Analysis::new(StatementKind::Read, first).read();
    }
    running(t, inner, format!("{first} ANALYZE"))
}

/// `ANALYZE TABLE …` (administration) or MariaDB's `ANALYZE <statement>`
/// (runs it and shows the plan).
fn analyze_statement(t: &[Token]) -> Analysis {
    if matches!(
        word(t, 1),
        "TABLE" | "TABLES" | "NO_WRITE_TO_BINLOG" | "LOCAL"
    ) {
        return Analysis::new(StatementKind::Other, "ANALYZE TABLE").commits();
    }
    running(t, inner_statement(t, 1), "ANALYZE".to_string())
}

/// A statement that runs the statement at `inner`: its kind and findings,
/// but never a read.
fn running(t: &[Token], inner: Option<usize>, what: String) -> Analysis {
    let mut analysis = Analysis::new(StatementKind::Other, what.clone());
    if let Some(inner) = inner {
        let inner = statement(&t[inner..]);
        analysis.kind = inner.kind;
        analysis.what = format!("{what} {}", inner.what);
        analysis.absorb(inner);
    }
    analysis
}

/// `SET …`: session variables are fine; some names and forms are not.
fn set(t: &[Token]) -> Analysis {
    let mut analysis = Analysis::new(StatementKind::Set, "SET").read();
    match (word(t, 1), word(t, 2)) {
        ("PASSWORD", _) => analysis = Analysis::new(StatementKind::Set, "SET PASSWORD"),
        ("ROLE", _) => analysis = Analysis::new(StatementKind::Set, "SET ROLE"),
        ("DEFAULT", "ROLE") => analysis = Analysis::new(StatementKind::Set, "SET DEFAULT ROLE"),
        _ => {}
    }
    if analysis.what != "SET" {
        return analysis.not_allowed(ACCOUNTS);
    }
    // `SET STATEMENT <variables> FOR <statement>`: the FORs outside
    // parentheses. The first one ends the variables; the statement after
    // each is checked (a conservative reading of odd values).
    let statement_form = word(t, 1) == "STATEMENT";
    let mut fors = Vec::new();
    if statement_form {
        let mut depth = 0usize;
        for (i, token) in t.iter().enumerate() {
            if token.is_punct("(") {
                depth += 1;
            } else if token.is_punct(")") {
                depth = depth.saturating_sub(1);
            } else if depth == 0 && token.word() == Some("FOR") {
                fors.push(i);
            }
        }
    }
    let variables = &t[1..fors.first().copied().unwrap_or(t.len())];
    for (i, token) in variables.iter().enumerate() {
        let Some(name) = token.word() else { continue };
        // `@name` is a user variable.
        if i > 0 && variables[i - 1].is_punct("@") {
            continue;
        }
        match name {
            "AUTOCOMMIT" | "COMPLETION_TYPE" => analysis = analysis.invalid(AUTOCOMMIT),
            "GLOBAL" | "PERSIST" | "PERSIST_ONLY" => {
                let mut global = Analysis::new(StatementKind::Set, "SET GLOBAL");
                global = global.not_allowed(ADMINISTRATION);
                analysis.absorb(global);
            }
            // `SET [SESSION] TRANSACTION ISOLATION LEVEL READ COMMITTED` is
            // fine; `READ WRITE` / `READ ONLY` change the access mode.
            "READ" if matches!(word(variables, i + 1), "WRITE" | "ONLY") => {
                analysis.leaves_read_only = true
            }
            "TX_READ_ONLY" | "TRANSACTION_READ_ONLY" => analysis.leaves_read_only = true,
            _ => {}
        }
        let value = character_set_value(variables, i);
        if value.is_some_and(|v| !matches!(v, Some("UTF8MB4" | "UTF8MB3" | "UTF8"))) {
            analysis = analysis.invalid(CHARSET);
        }
    }
    for (n, &at) in fors.iter().enumerate() {
        let inner = statement(&t[at + 1..]);
        analysis.read &= inner.read;
        if n == 0 {
            analysis.kind = inner.kind;
            analysis.what = format!("SET STATEMENT … FOR {}", inner.what);
        }
        analysis.absorb(inner);
    }
    analysis
}

/// When the word at `i` sets the client character set (`NAMES x`,
/// `CHARACTER SET x`, `CHARSET x`, `character_set_client = x`): the value,
/// if it is a plain name or string.
fn character_set_value(t: &[Token], i: usize) -> Option<Option<&str>> {
    let value_at = match word(t, i) {
        "NAMES" | "CHARSET" => i + 1,
        "CHARACTER" if word(t, i + 1) == "SET" => i + 2,
        "CHARACTER_SET_CLIENT" => {
            let mut at = i + 1;
            while t
                .get(at)
                .is_some_and(|t| t.is_punct(":") || t.is_punct("="))
            {
                at += 1;
            }
            at
        }
        _ => return None,
    };
    Some(t.get(value_at).and_then(|t| match t.kind {
        TokenKind::Word | TokenKind::Str => Some(t.text.as_str()),
        TokenKind::Punct => None,
    }))
}

/// `CREATE`, `ALTER`, `DROP`: DDL, which commits implicitly, except
/// `CREATE/DROP TEMPORARY TABLE`; accounts and servers are administration.
fn ddl(t: &[Token]) -> Analysis {
    let verb = word(t, 0);
    let mut temporary = false;
    let mut invoker = false;
    let mut object = None;
    let mut i = 1;
    while i < t.len() {
        match t[i].word() {
            Some("TEMPORARY") => temporary = true,
            Some("SECURITY") if word(t, i + 1) == "INVOKER" => invoker = true,
            Some("DEFINER") => {
                // DEFINER = user[@host] | CURRENT_USER[()] | CURRENT_ROLE[()]
                i += 1;
                if t.get(i).is_some_and(|t| t.is_punct("=")) {
                    i += 1;
                }
                i += 1;
                if t.get(i).is_some_and(|t| t.is_punct("("))
                    && t.get(i + 1).is_some_and(|t| t.is_punct(")"))
                {
                    i += 2;
                }
                if t.get(i).is_some_and(|t| t.is_punct("@")) {
                    i += 2;
                }
                continue;
            }
            Some(w) if OBJECTS.contains(&w) => {
                object = Some(w);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let what = match object {
        Some(object) => format!("{verb} {object}"),
        None => verb.to_string(),
    };
    let mut analysis = Analysis::new(StatementKind::Ddl, what);
    match object {
        Some("PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT" | "PACKAGE") => {
            analysis.has_body = verb != "DROP";
            analysis.installs_code = Some(format!(
                "{} is not allowed through the gateway: {CODE}",
                analysis.what
            ));
        }
        Some("VIEW") if verb != "DROP" && !invoker => {
            analysis.installs_code = Some(format!(
                "{} without SQL SECURITY INVOKER is not allowed through the gateway: {CODE}",
                analysis.what
            ));
        }
        _ => {}
    }
    match object {
        Some("USER" | "ROLE") => analysis.not_allowed(ACCOUNTS),
        Some("SERVER" | "INSTANCE") => analysis.not_allowed(ADMINISTRATION),
        Some("PREPARE") => Analysis::new(StatementKind::Other, "DROP PREPARE").invalid(PREPARE),
        Some("TABLE") if temporary && verb != "ALTER" => analysis,
        _ => analysis.commits(),
    }
}
