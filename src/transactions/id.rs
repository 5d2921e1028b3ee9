//! Transaction ids: what a client holds to name its transaction.
use std::{fmt, net::SocketAddr};

/// A transaction's id: 128 random bits, written as 32 lowercase hex digits,
/// followed in a fleet (`--peers`) by `-` and the address of the gateway
/// instance that owns the transaction (`--advertise-address`), so that any
/// instance can forward a call to it.
///
/// Unguessable, so that holding an id is as good as having begun the
/// transaction (ownership is still checked against the principal). The
/// owner part is only a hint of where to look: a gateway forwards only to
/// addresses in its current peer set, whatever an id says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

/// Hex digits in an id.
const DIGITS: usize = 32;

impl TransactionId {
    /// A new random id, naming `owner` when there is one.
    pub(crate) fn new_random(owner: Option<SocketAddr>) -> TransactionId {
        let mut bytes = [0u8; DIGITS / 2];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        let mut text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(owner) = owner {
            text.push('-');
            text.push_str(&owner.to_string());
        }
        TransactionId(text)
    }

    /// The id a client sent, if it has the form of one (anything else cannot
    /// name a transaction).
    pub(crate) fn parse(text: &str) -> Option<TransactionId> {
        let (random, owner) = match text.split_once('-') {
            Some((random, owner)) => (random, Some(owner)),
            None => (text, None),
        };
        let well_formed = random.len() == DIGITS
            && random
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && owner.is_none_or(|owner| owner.parse::<SocketAddr>().is_ok());
        well_formed.then(|| TransactionId(text.to_string()))
    }

    /// The gateway instance that owns the transaction, when the id names one.
    pub fn owner(&self) -> Option<SocketAddr> {
        self.0.split_once('-')?.1.parse().ok()
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
        let a = TransactionId::new_random(None);
        let b = TransactionId::new_random(None);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(TransactionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn only_well_formed_ids_parse() {
        let hex = "0".repeat(32);
        for bad in [
            "",
            "abc",
            &"g".repeat(32),
            &"A".repeat(32),
            &"0".repeat(33),
            &format!("{hex}-"),
            &format!("{hex}-example.com:80"),
            &format!("{hex}-10.0.0.1"),
            &format!("-{hex}"),
        ] {
            assert_eq!(TransactionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_id_names_its_owner_in_a_fleet() {
        let owner: SocketAddr = "10.1.2.3:50051".parse().unwrap();
        let id = TransactionId::new_random(Some(owner));
        assert!(id.as_str().ends_with("-10.1.2.3:50051"), "{id}");
        assert_eq!(TransactionId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.owner(), Some(owner));
        let v6 = TransactionId::new_random(Some("[::1]:7000".parse().unwrap()));
        assert_eq!(
            TransactionId::parse(v6.as_str()).unwrap().owner(),
            v6.owner()
        );
        assert_eq!(TransactionId::new_random(None).owner(), None);
    }
}
