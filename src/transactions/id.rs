//! Transaction ids: what a client holds to name its transaction.
use std::{
    fmt::{self, Write},
    net::SocketAddr,
};

/// A transaction's id: 128 random bits, written as 32 lowercase hex digits,
/// followed by `-`, the owner's instance epoch (8 hex digits, drawn when the
/// instance starts) and `-` the address of the gateway instance that owns
/// the transaction (its listen address; in a fleet, `--advertise-address`),
/// so that any instance of a fleet can forward a call to it, and an owner
/// restarted on the same address, in a fleet or alone, knows the ids of its
/// previous life.
///
/// Unguessable, so that holding an id is as good as having begun the
/// transaction (ownership is still checked against the principal). The
/// owner part is only a hint of where to look: a gateway forwards only to
/// addresses in its current peer set, whatever an id says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

/// Hex digits in an id's random part.
const DIGITS: usize = 32;

/// Hex digits of an instance epoch.
const EPOCH_DIGITS: usize = 8;

/// What tells one life of an instance from the next on the same address:
/// 32 random bits drawn when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u32);

impl Epoch {
    /// A new epoch, for an instance that is starting.
    pub fn new() -> Epoch {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        Epoch(u32::from_be_bytes(bytes))
    }
}

impl Default for Epoch {
    fn default() -> Epoch {
        Epoch::new()
    }
}

impl TransactionId {
    /// A new random id, naming `owner` (and its `epoch`) when there is one.
    pub(crate) fn new_random(owner: Option<(SocketAddr, Epoch)>) -> TransactionId {
        let mut bytes = [0u8; DIGITS / 2];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        let mut text = String::with_capacity(DIGITS + 32);
        for b in bytes {
            let _ = write!(text, "{b:02x}");
        }
        if let Some((owner, Epoch(epoch))) = owner {
            let _ = write!(text, "-{epoch:08x}-{owner}");
        }
        TransactionId(text)
    }

    /// The id a client sent, if it has the form of one (anything else cannot
    /// name a transaction).
    pub(crate) fn parse(text: &str) -> Option<TransactionId> {
        let (random, rest) = match text.split_once('-') {
            Some((random, rest)) => (random, Some(rest)),
            None => (text, None),
        };
        let well_formed = is_hex(random, DIGITS)
            && rest.is_none_or(|rest| {
                let (epoch, owner) = split_epoch(rest);
                epoch.is_none_or(|e| is_hex(e, EPOCH_DIGITS)) && owner.parse::<SocketAddr>().is_ok()
            });
        well_formed.then(|| TransactionId(text.to_string()))
    }

    /// The gateway instance that owns the transaction, when the id names one.
    pub fn owner(&self) -> Option<SocketAddr> {
        split_epoch(self.0.split_once('-')?.1).1.parse().ok()
    }

    /// The owner's epoch, when the id names one (ids made before epochs
    /// existed name none).
    pub fn epoch(&self) -> Option<Epoch> {
        let epoch = split_epoch(self.0.split_once('-')?.1).0?;
        u32::from_str_radix(epoch, 16).ok().map(Epoch)
    }

    /// The id as the client sees it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `epoch-owner` into its parts; just `owner` when there is no epoch.
fn split_epoch(rest: &str) -> (Option<&str>, &str) {
    match rest.split_once('-') {
        Some((epoch, owner)) => (Some(epoch), owner),
        None => (None, rest),
    }
}

/// True when `text` is `digits` lowercase hex digits.
fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
            &format!("{hex}-0000000-10.0.0.1:80"),
            &format!("{hex}-0000000G-10.0.0.1:80"),
            &format!("{hex}-00000000-"),
        ] {
            assert_eq!(TransactionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_id_names_its_owner_in_a_fleet() {
        let owner: SocketAddr = "10.1.2.3:50051".parse().unwrap();
        let epoch = Epoch::new();
        let id = TransactionId::new_random(Some((owner, epoch)));
        assert!(id.as_str().ends_with("-10.1.2.3:50051"), "{id}");
        assert_eq!(TransactionId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.owner(), Some(owner));
        assert_eq!(id.epoch(), Some(epoch));
        // An id of an earlier version: an owner, no epoch.
        let older = TransactionId::parse(&format!("{}-10.1.2.3:50051", "0".repeat(32))).unwrap();
        assert_eq!((older.owner(), older.epoch()), (Some(owner), None));
        let v6 = TransactionId::new_random(Some(("[::1]:7000".parse().unwrap(), epoch)));
        assert_eq!(
            TransactionId::parse(v6.as_str()).unwrap().owner(),
            v6.owner()
        );
        assert_eq!(TransactionId::new_random(None).owner(), None);
        assert_eq!(TransactionId::new_random(None).epoch(), None);
    }
}
