//! Typed states: every status column maps to an enum here, at the storage edge, and nowhere
//! above it is a status spelled as a string. Each enum writes itself as its SQL spelling and reads
//! only the spellings it knows: an unknown stored value is a deserialisation error, never a
//! silent default. The spellings also appear in the SQL fragments that compute an "effective"
//! status on the database clock (`db::seats`, `db::reservations`), and in the CHECK
//! constraints of the migrations.

use std::io::Write;

use diesel::deserialize::{self, FromSql};
use diesel::mysql::{Mysql, MysqlValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;

/// Declares a stored enum and its SQL spellings.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $sql:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The value as stored.
            pub const fn as_sql(self) -> &'static str {
                match self {
                    $(Self::$variant => $sql),+
                }
            }

            /// The variant stored as `s`, if any.
            pub fn from_sql_str(s: &str) -> Option<Self> {
                match s {
                    $($sql => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl ToSql<Text, Mysql> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Mysql>) -> serialize::Result {
                out.write_all(self.as_sql().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Mysql> for $name {
            fn from_sql(value: MysqlValue<'_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<Text, Mysql>>::from_sql(value)?;
                Self::from_sql_str(&s).ok_or_else(|| {
                    format!(concat!("unexpected stored ", stringify!($name), " {:?}"), s).into()
                })
            }
        }
    };
}

stored_enum!(
    /// `seats.status`. A HELD seat whose `held_until` has passed is free to take; reads show it
    /// AVAILABLE (`EFFECTIVE_SEAT_STATUS`) before any sweeper writes it.
    SeatStatus {
        Available = "AVAILABLE",
        Held = "HELD",
        Sold = "SOLD",
    }
);

stored_enum!(
    /// `reservations.status`. A HELD reservation past `held_until` reads EXPIRED.
    ReservationStatus {
        Held = "HELD",
        Paid = "PAID",
        Expired = "EXPIRED",
        Cancelled = "CANCELLED",
        /// Paid, then refunded: the seat is on sale again and the price back in the wallet.
        Refunded = "REFUNDED",
    }
);

stored_enum!(
    /// `orders.status`. A HELD order past `held_until` reads EXPIRED.
    OrderStatus {
        Held = "HELD",
        Paid = "PAID",
        /// Given back by the fan (or a waitlist offer declined) before it was paid.
        Released = "RELEASED",
        Expired = "EXPIRED",
        /// Every seat of it refunded.
        Refunded = "REFUNDED",
    }
);

stored_enum!(
    /// `orders.source`: how the seats were taken, which decides what paying needs.
    OrderSource {
        /// During a queue turn: paying needs that turn (`Queue-Token`).
        Turn = "TURN",
        /// Offered from the waitlist: paying needs no turn.
        Waitlist = "WAITLIST",
    }
);

stored_enum!(
    /// `waitlist_entries.status`. OFFERED past `offer_expires_at` reads EXPIRED.
    WaitlistStatus {
        Waiting = "WAITING",
        /// Seats are held for the fan as an order until the offer's deadline.
        Offered = "OFFERED",
        /// The offer was paid.
        Accepted = "ACCEPTED",
        /// The offer lapsed unpaid.
        Expired = "EXPIRED",
        /// The fan left the waitlist or declined the offer.
        Left = "LEFT",
    }
);

stored_enum!(
    /// `queue_tickets.status`. An ACTIVE ticket past `expires_at` is over without a write;
    /// clients see ABANDONED tickets as EXPIRED.
    TicketStatus {
        /// Entered a scheduled sale's pre-queue: no place until the draw at opening.
        Prequeued = "PREQUEUED",
        Waiting = "WAITING",
        Active = "ACTIVE",
        Expired = "EXPIRED",
        Completed = "COMPLETED",
        /// Skipped by admission: its holder stopped polling or watching.
        Abandoned = "ABANDONED",
    }
);

stored_enum!(
    /// `wallet_transactions.kind`.
    LedgerKind {
        Charge = "CHARGE",
        Payment = "PAYMENT",
        /// A paid ticket's price credited back.
        Refund = "REFUND",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_what_it_writes_and_nothing_else() {
        for s in [SeatStatus::Available, SeatStatus::Held, SeatStatus::Sold] {
            assert_eq!(SeatStatus::from_sql_str(s.as_sql()), Some(s));
        }
        for s in [
            TicketStatus::Waiting,
            TicketStatus::Active,
            TicketStatus::Expired,
            TicketStatus::Completed,
            TicketStatus::Abandoned,
        ] {
            assert_eq!(TicketStatus::from_sql_str(s.as_sql()), Some(s));
        }
        assert_eq!(ReservationStatus::from_sql_str("CANCELED"), None);
        assert_eq!(LedgerKind::from_sql_str("charge"), None);
    }
}

stored_enum!(
    /// What a user may do: every account is a fan; operators also run sales.
    Role {
        Fan = "FAN",
        Operator = "OPERATOR",
    }
);
