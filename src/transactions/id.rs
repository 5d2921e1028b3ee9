//! Transaction ids: what a client holds to name its transaction.
use std::fmt;

/// A transaction's id: 128 random bits, written as 32 lowercase hex digits.
///
/// Unguessable, so that holding an id is as good as having begun the
/// transaction (ownership is still checked against the principal). A type of
/// its own, so that later forms (e.g. naming the gateway instance that owns
/// the transaction) change one place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

/// Hex digits in an id.
const DIGITS: usize = 32;

impl TransactionId {
    /// A new random id.
    pub(crate) fn new_random() -> TransactionId {
        let mut bytes = [0u8; DIGITS / 2];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        TransactionId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The id a client sent, if it has the form of one (anything else cannot
    /// name a transaction).
    pub(crate) fn parse(text: &str) -> Option<TransactionId> {
        let well_formed = text.len() == DIGITS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| TransactionId(text.to_string()))
    }

    /// The id as the client sees it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bit_hex_and_differ() {
        let a = TransactionId::new_random();
        let b = TransactionId::new_random();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(TransactionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn only_well_formed_ids_parse() {
        for bad in ["", "abc", &"g".repeat(32), &"A".repeat(32), &"0".repeat(33)] {
            assert_eq!(TransactionId::parse(bad), None, "{bad:?}");
        }
    }
}
