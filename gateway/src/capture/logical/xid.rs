//! The stream's 32-bit transaction ids as the 64-bit ids the trigger mode
//! reports (`txid_current()`).

use sqlx::PgPool;

use crate::capture::Error;

/// Extends the stream's 32-bit transaction ids to the 64-bit ids the
/// trigger mode reports (`txid_current()`), from the server's next id.
#[derive(Debug, Default)]
pub(super) struct XidEpoch {
    next_full: u64,
}

impl XidEpoch {
    /// Reads the server's next transaction id once (at start), then follows
    /// it from `xids`: an id newer than the one known moves it forward, so a
    /// stream of new transactions costs no query.
    pub(super) async fn refresh_for(
        &mut self,
        pool: &PgPool,
        xids: impl Iterator<Item = u32>,
    ) -> Result<(), Error> {
        if self.next_full == 0 {
            let next: i64 =
                sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
                    .fetch_one(pool)
                    .await?;
            self.next_full = u64::try_from(next).unwrap_or(0);
        }
        for xid in xids {
            self.saw(xid);
        }
        Ok(())
    }

    /// Moves the next id past `xid` when `xid` is newer than it. Ids are
    /// handed out in order, so an id less than 2^31 ahead of the known
    /// next one (modulo 2^32) is that far ahead in 64 bits too; anything
    /// else is older, already known.
    fn saw(&mut self, xid: u32) {
        let low = (self.next_full & 0xFFFF_FFFF) as u32;
        let ahead = xid.wrapping_sub(low);
        if ahead < (1 << 31) {
            self.next_full += u64::from(ahead) + 1;
        }
    }

    /// How far back from the next id `xid` is, modulo 2^32 (1 for the
    /// newest transaction).
    fn distance_back(&self, xid: u32) -> u64 {
        // The low half of the next id (the cast keeps exactly those bits).
        let low = (self.next_full & 0xFFFF_FFFF) as u32;
        u64::from(low.wrapping_sub(xid))
    }

    /// The 64-bit id of a past transaction's 32-bit `xid`.
    pub(super) fn full(&self, xid: u32) -> i64 {
        let full = self.next_full.saturating_sub(self.distance_back(xid));
        i64::try_from(full).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_take_the_epoch() {
        let e = XidEpoch {
            next_full: (3 << 32) | 1000,
        };
        assert_eq!(e.full(999), (3 << 32) | 999);
        // An id above the next one's low half is from before the wrap.
        assert_eq!(e.full(4_000_000_000), (2 << 32) | 4_000_000_000);
        let first = XidEpoch { next_full: 800 };
        assert_eq!(first.full(750), 750);
        // Just after a wrap: the new low ids need no refresh, the old high
        // ones are from the epoch before.
        let wrapped = XidEpoch {
            next_full: (5 << 32) | 10,
        };
        assert_eq!(wrapped.full(3), (5 << 32) | 3);
        assert_eq!(
            wrapped.full(u32::MAX - 2),
            (4 << 32) | i64::from(u32::MAX - 2)
        );
        assert!(wrapped.distance_back(3) < (1 << 31));
        // An id the known one has not reached (newer): it moves it forward.
        assert!(wrapped.distance_back(20) >= (1 << 31));
        let mut moving = wrapped;
        moving.saw(20);
        assert_eq!(moving.next_full, (5 << 32) | 21);
        assert_eq!(moving.full(20), (5 << 32) | 20);
        assert_eq!(moving.full(3), (5 << 32) | 3);
        // Older ids leave it where it is.
        moving.saw(3);
        moving.saw(u32::MAX - 2);
        assert_eq!(moving.next_full, (5 << 32) | 21);
        // Across a wrap of the 32-bit counter.
        let mut near = XidEpoch {
            next_full: (7 << 32) | u64::from(u32::MAX - 1),
        };
        near.saw(5);
        assert_eq!(near.next_full, (8 << 32) | 6);
        assert_eq!(near.full(5), (8 << 32) | 5);
        assert_eq!(near.full(u32::MAX - 3), (7 << 32) | i64::from(u32::MAX - 3));
    }
}
