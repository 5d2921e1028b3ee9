//! Splits SQL into tokens the way MariaDB's lexer (`sql_lex.cc`) does, for
//! the parts the guard relies on: blanks, comments, strings and quoted
//! identifiers. What the server would read differently is refused, never guessed.
//!
//! Observed on MariaDB 10.11 (and in `sql_lex.cc`):
//! - blanks are `\t \n \v \f \r` and space (other control bytes are syntax errors);
//! - `#` and `--` followed by end of input, a control byte or a blank start a
//!   comment that ends at `\n` only (a lone `\r` does not end it);
//! - `/* … */` comments do not nest and an unterminated one is a syntax error;
//! - `/*! … */`, `/*!NNNNN … */`, `/*M! … */`, `/*M!NNNNNN … */` are executable
//!   comments whose body runs or is skipped depending on the server version:
//!   refused here (`/*m! … */`, lowercase, is an ordinary comment);
//! - strings `'…'` and `"…"` end at an undoubled quote; a backslash escapes
//!   the next byte unless `NO_BACKSLASH_ESCAPES`; under `ANSI_QUOTES`, `"…"`
//!   is an identifier (no backslash escapes); `` `…` `` is an identifier;
//!   under `MSSQL`, so is `[…]` (`]]` stands for `]`).
//!
//! The connection's character set is UTF-8 (mysql_async's default), so no
//! byte of a multi-byte character can be taken for a quote or a backslash.
use crate::errors::GatewayError;

/// How the session's `sql_mode` makes the server read quotes.
pub(super) use super::SqlMode as Mode;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// An unquoted word (keyword, name, number) or a quoted identifier;
    /// its text is unquoted and in upper case.
    Word,
    /// A string literal; its text is its content, in upper case, escapes
    /// left as written.
    Str,
    /// One punctuation byte, or `@@`.
    Punct,
}

/// A significant token.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub kind: TokenKind,
    pub text: String,
    /// Byte offset in the statement.
    pub offset: usize,
}

impl Token {
    /// The word, if the token is one.
    pub fn word(&self) -> Option<&str> {
        (self.kind == TokenKind::Word).then_some(self.text.as_str())
    }

    /// True when the token is the punctuation `p`.
    pub fn is_punct(&self, p: &str) -> bool {
        self.kind == TokenKind::Punct && self.text == p
    }
}

/// The tokens of a text, and whether a word that can change the session's
/// identity (USE, ROLE, CALL, EXECUTE, PREPARE) appears outside string
/// literals, comment bodies included.
#[derive(Debug)]
pub(super) struct Lexed {
    pub tokens: Vec<Token>,
    pub may_change_identity: bool,
}

/// Words after which the gateway restores the connection's database and role.
const IDENTITY_WORDS: [&str; 5] = ["USE", "ROLE", "CALL", "EXECUTE", "PREPARE"];

/// The server's blanks (`my_isspace` for UTF-8).
pub(super) fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn refuse(message: &str) -> GatewayError {
    GatewayError::InvalidRequest(message.to_string())
}

/// Splits `sql` into tokens as the server would under `mode`.
pub(super) fn lex(sql: &str, mode: Mode) -> Result<Lexed, GatewayError> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut identity = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let next = bytes.get(i + 1).copied();
        match c {
            0 => {
                return Err(refuse(
                    "sql contains a NUL byte: send binary data as a parameter",
                ));
            }
            b if is_blank(b) => i += 1,
            b'#' => {
                i = skip_line_comment(bytes, i)?;
                identity |= has_identity_word(&bytes[start..i]);
            }
            b'-' if next == Some(b'-')
                && bytes.get(i + 2).is_none_or(|&b| b <= 0x20 || b == 0x7f) =>
            {
                i = skip_line_comment(bytes, i)?;
                identity |= has_identity_word(&bytes[start..i]);
            }
            b'/' if next == Some(b'*') => {
                let executable = bytes.get(i + 2) == Some(&b'!')
                    || (bytes.get(i + 2) == Some(&b'M') && bytes.get(i + 3) == Some(&b'!'));
                if executable {
                    return Err(refuse(
                        "executable comments /*! … */ are not allowed: send plain SQL",
                    ));
                }
                // Comments do not nest: the first `*/` after `/*` ends it.
                let Some(end) = find(bytes, i + 2, b"*/") else {
                    return Err(refuse(
                        "the sql ends inside a /* … */ comment: close the comment with */",
                    ));
                };
                i = end + 2;
                identity |= has_identity_word(&bytes[start..i]);
            }
            b'\'' | b'"' | b'`' | b'[' if c != b'[' || mode.brackets => {
                let identifier = matches!(c, b'`' | b'[') || (c == b'"' && mode.ansi_quotes);
                let escapes = !identifier && mode.backslash_escapes;
                let close = if c == b'[' { b']' } else { c };
                let (end, content) = read_quoted(bytes, i, close, escapes)?;
                i = end;
                let text = String::from_utf8_lossy(&content).to_ascii_uppercase();
                if identifier {
                    identity |= IDENTITY_WORDS.contains(&text.as_str());
                    tokens.push(Token {
                        kind: TokenKind::Word,
                        text,
                        offset: start,
                    });
                } else {
                    tokens.push(Token {
                        kind: TokenKind::Str,
                        text,
                        offset: start,
                    });
                }
            }
            b if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                let text = sql[start..i].to_ascii_uppercase();
                identity |= IDENTITY_WORDS.contains(&text.as_str());
                tokens.push(Token {
                    kind: TokenKind::Word,
                    text,
                    offset: start,
                });
            }
            b'@' if next == Some(b'@') => {
                i += 2;
                tokens.push(Token {
                    kind: TokenKind::Punct,
                    text: "@@".into(),
                    offset: start,
                });
            }
            _ => {
                // Punctuation, or a control byte the server refuses anyway.
                i += 1;
                tokens.push(Token {
                    kind: TokenKind::Punct,
                    text: char::from(c).to_string(),
                    offset: start,
                });
            }
        }
    }
    Ok(Lexed {
        tokens,
        may_change_identity: identity,
    })
}

/// Skips a `#` or `--` comment from `from`; returns the offset of the `\n`
/// that ends it (or the end of the text).
fn skip_line_comment(bytes: &[u8], from: usize) -> Result<usize, GatewayError> {
    let end = find(bytes, from, b"\n").unwrap_or(bytes.len());
    let body = &bytes[from..end];
    // The server reads on to `\n`; a client (or another server) might end
    // the line at a lone `\r`. Refuse rather than guess.
    let lone_cr = body
        .iter()
        .enumerate()
        .any(|(k, &b)| b == b'\r' && from + k + 1 < end);
    if lone_cr {
        return Err(refuse(
            "a -- or # comment contains a carriage return not followed by a newline, which ends lines for some readers and not for the server: end comments with \\n",
        ));
    }
    Ok(end)
}

/// Reads a quoted item starting at `from` and ending at `quote`: returns the
/// offset after it and its content (doubled quotes collapsed; escapes kept
/// as written).
fn read_quoted(
    bytes: &[u8],
    from: usize,
    quote: u8,
    escapes: bool,
) -> Result<(usize, Vec<u8>), GatewayError> {
    let mut content = Vec::new();
    let mut i = from + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && escapes {
            content.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
            i += 2;
        } else if b == quote && bytes.get(i + 1) == Some(&quote) {
            content.push(quote);
            i += 2;
        } else if b == quote {
            return Ok((i + 1, content));
        } else {
            content.push(b);
            i += 1;
        }
    }
    Err(refuse(match quote {
        b'`' | b']' => "the sql ends inside a quoted identifier: close it",
        _ => "the sql ends inside a quoted string: close it",
    }))
}

/// True when a comment body, read as code, holds one of [`IDENTITY_WORDS`].
fn has_identity_word(body: &[u8]) -> bool {
    body.split(|&b| !is_word_byte(b)).any(|w| {
        IDENTITY_WORDS
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k.as_bytes()))
    })
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}
