-- The SQL of one whole purchase as the mall runs it since 2026-12-02 (issue 16), statement for
-- statement: two cart adds, each one statement (the version-checked bump and the upsert that
-- checks the product, as data-modifying CTEs; the answer is priced from the node's price list),
-- then the checkout, unchanged from purchase.sql. Three commits. purchase.sql keeps the SQL the
-- mall ran before, the reference the issue's target names. Run with
--   pgbench -n -f benches/pgbench/purchase-now.sql -c 32 -j 2 -T 20 mall_ceiling
-- Each client is its own user; ids are random 62-bit numbers (collisions are negligible).
\set uid :client_id + 1
\set p1 random(1, 500)
\set p2 random(501, 1000)
\set oid random(1000000, 4611686018427387903)
\set pay random(1000000, 4611686018427387903)
-- add to cart, first line: one statement (its own commit); the answer is priced from memory
WITH live AS (SELECT id FROM products WHERE id = :p1 AND deleted_at IS NULL),
  bumped AS (UPDATE carts SET version = version + 1, updated_at = now()
    WHERE user_id = :uid AND version > 0 AND EXISTS (SELECT 1 FROM live) RETURNING version),
  upserted AS (INSERT INTO cart_lines (user_id, product_id, quantity, position)
    SELECT :uid, live.id, 1, 1 FROM live, bumped
    ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity, position = excluded.position
    RETURNING 1)
SELECT (SELECT version FROM bumped), EXISTS (SELECT 1 FROM live);
-- add to cart, second line
WITH live AS (SELECT id FROM products WHERE id = :p2 AND deleted_at IS NULL),
  bumped AS (UPDATE carts SET version = version + 1, updated_at = now()
    WHERE user_id = :uid AND version > 0 AND EXISTS (SELECT 1 FROM live) RETURNING version),
  upserted AS (INSERT INTO cart_lines (user_id, product_id, quantity, position)
    SELECT :uid, live.id, 1, 2 FROM live, bumped
    ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity, position = excluded.position
    RETURNING 1)
SELECT (SELECT version FROM bumped), EXISTS (SELECT 1 FROM live);
-- checkout: one transaction for the order, its session (charged) and the emptied cart
BEGIN;
SELECT id, stock, deleted_at IS NOT NULL, name, price_cents FROM products
  WHERE id IN (:p1, :p2) ORDER BY id FOR NO KEY UPDATE;
UPDATE carts SET version = version + 1, updated_at = now() WHERE user_id = :uid AND version > 0;
DELETE FROM cart_lines WHERE user_id IN (:uid);
UPDATE products SET stock = stock - 1 WHERE id = :p1 AND deleted_at IS NULL AND stock >= 1;
UPDATE products SET stock = stock - 1 WHERE id = :p2 AND deleted_at IS NULL AND stock >= 1;
INSERT INTO orders (id, user_id, status, total_cents, address, note, created_at, updated_at, expires_at, paid_at, cancelled_at, cancel_reason, version)
  VALUES (:oid, :uid, 'paid', 2000, '{}', NULL, now(), now(), now() + interval '15 minutes', now(), NULL, NULL, 1);
INSERT INTO order_items (order_id, position, product_id, name, unit_price_cents, quantity, line_total_cents)
  VALUES (:oid, 0, :p1, 'Product', 1000, 1, 1000), (:oid, 1, :p2, 'Product', 1000, 1, 1000);
INSERT INTO payments (id, order_id, user_id, amount_cents, status, card_last4, last_error, attempts, created_at, updated_at, expires_at, succeeded_at, cancelled_at, version)
  VALUES (:pay, :oid, :uid, 2000, 'succeeded', '4242', NULL, 1, now(), now(), now() + interval '5 minutes', now(), NULL, 1);
COMMIT;
