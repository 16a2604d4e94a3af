-- The SQL of one whole purchase as the mall runs it (add to cart, checkout, open a payment
-- session, confirm), one transaction per step as the actors commit them. Run with
--   pgbench -n -f benches/pgbench/purchase.sql -c 32 -j 2 -T 20 mall_ceiling
-- Ids are random 62-bit numbers (collisions are negligible), the product one of 1000.
\set pid random(1, 1000)
\set oid random(1000000, 4611686018427387903)
\set pay random(1000000, 4611686018427387903)
-- add to cart: the cart actor's version-checked write
BEGIN;
SELECT count(*) FROM products WHERE id = :pid AND deleted_at IS NULL;
UPDATE carts SET version = version + 1, updated_at = now() WHERE user_id = 1;
INSERT INTO cart_lines (user_id, product_id, quantity, position) VALUES (1, :pid, 1, :oid)
  ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = 1;
COMMIT;
-- checkout: take the stock, copy the price, create the order
BEGIN;
UPDATE products SET stock = stock - 1 WHERE id = :pid AND deleted_at IS NULL AND stock >= 1;
SELECT id, name, price_cents FROM products WHERE id = :pid;
INSERT INTO orders (id, user_id, status, total_cents, address, created_at, updated_at, expires_at)
  VALUES (:oid, 1, 'pending_payment', 1000, '{}', now(), now(), now() + interval '15 minutes');
INSERT INTO order_items (order_id, position, product_id, name, unit_price_cents, quantity, line_total_cents)
  VALUES (:oid, 0, :pid, 'Product', 1000, 1, 1000);
COMMIT;
-- the cart loses the ordered line
BEGIN;
UPDATE carts SET version = version + 1, updated_at = now() WHERE user_id = 1;
DELETE FROM cart_lines WHERE user_id = 1 AND product_id = :pid;
COMMIT;
-- open a payment session
BEGIN;
SELECT status, total_cents FROM orders WHERE id = :oid AND user_id = 1;
SELECT id FROM payments WHERE order_id = :oid AND status = 'pending';
INSERT INTO payments (id, order_id, user_id, amount_cents, status, created_at, updated_at, expires_at)
  VALUES (:pay, :oid, 1, 1000, 'pending', now(), now(), now() + interval '5 minutes');
COMMIT;
-- confirm: settle the session and mark the order paid, both conditional
BEGIN;
UPDATE payments SET status = 'succeeded', succeeded_at = now(), attempts = attempts + 1, card_last4 = '4242',
  updated_at = now(), version = version + 1 WHERE id = :pay AND status = 'pending' AND expires_at > now();
UPDATE orders SET status = 'paid', paid_at = now(), updated_at = now(), version = version + 1
  WHERE id = :oid AND status = 'pending_payment';
COMMIT;
