//! Id newtypes: a user, an order, a payment session and a product are different things, so a
//! call taking three ids cannot swap them. Each wraps the stored `BIGINT` (see `crate::ids` for
//! how they are minted) and serialises as that number.

/// Declares an `i64` id newtype.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The stored number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user (and so a cart: one per user).
    UserId
);
id_type!(
    /// An order.
    OrderId
);
id_type!(
    /// A payment session.
    PaymentId
);
id_type!(
    /// A product.
    ProductId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_and_serialise_as_their_number() {
        assert_eq!(OrderId(42).to_string(), "42");
        assert_eq!(UserId(7).get(), 7);
        assert_eq!(serde_json::to_string(&PaymentId(9)).unwrap(), "9");
    }
}
