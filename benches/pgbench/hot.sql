-- The flash-sale ceiling: every client takes one unit of the same product (id 1), as order
-- creation does, one transaction each. Run with
--   pgbench -n -f benches/pgbench/hot.sql -c 32 -j 2 -T 20 mall_ceiling
BEGIN;
UPDATE products SET stock = stock - 1 WHERE id = 1 AND deleted_at IS NULL AND stock >= 1;
COMMIT;
