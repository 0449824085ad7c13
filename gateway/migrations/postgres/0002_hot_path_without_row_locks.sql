-- Foreign keys whose checks lock a row on the delivery hot path.
--
-- A foreign-key check runs `SELECT … FOR KEY SHARE` on the referenced row,
-- and locking a row writes to it (and to the WAL). Two such checks ran once
-- per delivery: each new delivery locked its change (a row written a moment
-- before in the same transaction) and each recorded attempt locked its
-- delivery (a row updated a moment later in the same transaction). Together
-- they cost more PostgreSQL time than the delivery's own row write.
--
-- The references stay true without them: fan-out writes a change and its
-- deliveries in one transaction, changes are pruned only once no delivery
-- refers to them, attempts are recorded only for deliveries that exist,
-- and deleting a receiver or pruning deliveries deletes their attempts in
-- the same statement (see `store/receivers.rs` and `store/deliveries.rs`).
-- `deliveries.receiver_id` keeps its key (and its cascade): all deliveries of
-- a fan-out lock the same few receiver rows, once per transaction.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_change_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_delivery_id_fkey;
