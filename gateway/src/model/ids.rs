//! Ids of the stored objects, each its own type so a receiver id can never
//! be passed where a delivery id is expected. Stored as `BIGINT`; shown in
//! the API as GraphQL `ID`s.

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.trim().parse().map($name)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    )*};
}

id_type! {
    /// A receiver: where webhooks go.
    ReceiverId,
    /// A subscription: one (resource, action) of one receiver.
    SubscriptionId,
    /// A delivery of one change to one receiver; the body's `event_id`.
    DeliveryId,
    /// A stored change (captured or published).
    ChangeId,
}
