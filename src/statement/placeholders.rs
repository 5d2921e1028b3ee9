//! Placeholders every `sql_mode` reads the same way: the condition for
//! sending a statement's execute before the server has said how many
//! parameters it takes (`Conn::prepare_and_execute`, vendor/README.md).

/// The number of `?` placeholders of `sql` when no reading of the text can
/// disagree about it: ASCII, without quotes of any kind, backslashes,
/// comments or colons. Then every `?` is a placeholder whatever the session's
/// `sql_mode` (`ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`, `ORACLE`) and the
/// driver's named-parameter reading (`:name`). `None` otherwise.
pub fn unambiguous_placeholders(sql: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let plain = bytes
        .iter()
        .all(|&b| b.is_ascii() && !matches!(b, b'\'' | b'"' | b'`' | b'\\' | b'#' | b':'))
        && !bytes.windows(2).any(|pair| pair == b"--" || pair == b"/*");
    plain.then(|| bytes.iter().filter(|&&b| b == b'?').count())
}

#[cfg(test)]
mod tests {
    use super::unambiguous_placeholders as count;

    #[test]
    fn plain_text_counts_its_question_marks() {
        assert_eq!(count("SELECT v FROM kv WHERE id = ?"), Some(1));
        assert_eq!(count("UPDATE t SET a = ?, b = ? WHERE id = ?"), Some(3));
        assert_eq!(count("SELECT 1"), Some(0));
        assert_eq!(count("SELECT 1 - -1"), Some(0));
    }

    #[test]
    fn text_a_mode_could_read_otherwise_is_not_counted() {
        for sql in [
            "SELECT '?'",
            "SELECT \"?\"",
            "SELECT `?` FROM t",
            "SELECT 'a\\' , ?'",
            "SELECT 1 -- ?",
            "SELECT 1 # ?",
            "SELECT /* ? */ 1",
            "SELECT :name",
            "SELECT v FROM t WHERE id = ? AND n = 'é'",
            "SELECT é FROM t WHERE id = ?",
        ] {
            assert_eq!(count(sql), None, "{sql}");
        }
    }
}
