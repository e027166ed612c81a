//! Equal contracts held once. Every pod of an app lists the same tools at every handshake, and
//! apps that run the same server list the same tools too; the gate keeps the latest contract of
//! every pod, so without sharing a thousand pods of one server hold a thousand copies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::Contract;

/// Contracts by digest, each held as long as some handshake holds it.
#[derive(Clone, Debug, Default)]
pub struct Shared(Arc<Mutex<Table>>);

#[derive(Debug, Default)]
struct Table {
    by_digest: HashMap<String, Weak<Contract>>,
    /// Entries at which dropped contracts are swept out next.
    sweep_at: usize,
}

impl Shared {
    /// The held contract with `digest` (the digest of `contract`), else `contract`, now held.
    pub fn share(&self, digest: &str, contract: Contract) -> Arc<Contract> {
        let mut table = self.0.lock().expect("contract table lock");
        if let Some(held) = table.by_digest.get(digest).and_then(Weak::upgrade) {
            return held;
        }
        let contract = Arc::new(contract);
        table
            .by_digest
            .insert(digest.to_owned(), Arc::downgrade(&contract));
        if table.by_digest.len() >= table.sweep_at {
            table.by_digest.retain(|_, c| c.strong_count() > 0);
            table.sweep_at = (2 * table.by_digest.len()).max(64);
        }
        contract
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.0.lock().expect("contract table lock").by_digest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Tool;

    fn contract(tools: &[&str]) -> Contract {
        Contract::new(tools.iter().map(|t| (t.to_string(), Tool::default())))
    }

    #[test]
    fn equal_contracts_are_one_allocation() {
        let shared = Shared::default();
        let a = contract(&["echo", "add"]);
        let first = shared.share(&a.digest(), a.clone());
        let second = shared.share(&a.digest(), a);
        assert!(Arc::ptr_eq(&first, &second));
        let other = contract(&["echo"]);
        let third = shared.share(&other.digest(), other);
        assert!(!Arc::ptr_eq(&first, &third));
    }

    #[test]
    fn dropped_contracts_are_swept_out() {
        let shared = Shared::default();
        for i in 0..1000 {
            let c = contract(&[&format!("tool-{i}")]);
            drop(shared.share(&c.digest(), c));
        }
        assert!(shared.entries() <= 64, "{} entries kept", shared.entries());
        // A dropped contract is made again, not resurrected.
        let c = contract(&["tool-999"]);
        let again = shared.share(&c.digest(), c.clone());
        assert_eq!(*again, c);
    }
}
