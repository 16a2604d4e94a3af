-- Seed for the pgbench ceiling: 256 users with a cart each (pgbench client n is user n + 1, so
-- no two clients share a cart row) and 1000 products with ample stock, the first of which is
-- also the hot product of the flash-sale script. Run after `mall migrate` on an empty database.
INSERT INTO users (id, email, email_norm, name, password_hash, password_changed_at, created_at, updated_at)
SELECT g, 'bench' || g || '@example.com', 'bench' || g || '@example.com', 'Bench', 'x', now(), now(), now()
FROM generate_series(1, 256) AS g;
INSERT INTO carts (user_id, version, created_at, updated_at)
SELECT g, 1, now(), now() FROM generate_series(1, 256) AS g;
INSERT INTO products (id, merchant_id, name, search_text, description, price_cents, stock, created_at, updated_at)
SELECT g, 1, 'Product ' || g, 'product ' || g, '', 1000 + g, 1000000000, now(), now()
FROM generate_series(1, 1000) AS g;
