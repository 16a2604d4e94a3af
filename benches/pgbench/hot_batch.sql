-- What the mall's placement desk does for a flash sale: 32 buyers' one-unit orders of the hot
-- product (id 1) in one transaction — the row locked and decremented once, the orders and their
-- lines written with one multi-row insert each. One pgbench transaction is 32 orders. Run with
--   pgbench -n -f benches/pgbench/hot_batch.sql -c 4 -j 2 -T 20 mall_ceiling
-- and multiply the tps by 32 for orders per second.
\set uid :client_id + 1
\set base random(1000000, 4611686018427387903)
BEGIN;
SELECT id, stock, deleted_at IS NOT NULL, name, price_cents FROM products WHERE id IN (1) ORDER BY id FOR NO KEY UPDATE;
UPDATE products SET stock = stock - 32 WHERE id = 1 AND deleted_at IS NULL AND stock >= 32;
INSERT INTO orders (id, user_id, status, total_cents, address, note, created_at, updated_at, expires_at, paid_at, cancelled_at, cancel_reason, version)
  SELECT :base::bigint + g, :uid, 'pending_payment', 1001, '{}', NULL, now(), now(), now() + interval '15 minutes', NULL, NULL, NULL, 1
  FROM generate_series(0, 31) AS g;
INSERT INTO order_items (order_id, position, product_id, name, unit_price_cents, quantity, line_total_cents)
  SELECT :base::bigint + g, 0, 1, 'Product 1', 1001, 1, 1001 FROM generate_series(0, 31) AS g;
COMMIT;
