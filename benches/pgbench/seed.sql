-- Seed for the pgbench ceiling: one user and 1000 products with ample stock, plus the hot
-- product (id 1) of the flash-sale script. Run after `mall migrate` on an empty database.
INSERT INTO users (id, email, email_norm, name, password_hash, password_changed_at, created_at, updated_at)
VALUES (1, 'bench@example.com', 'bench@example.com', 'Bench', 'x', now(), now(), now());
INSERT INTO carts (user_id, version, created_at, updated_at) VALUES (1, 1, now(), now());
INSERT INTO products (id, merchant_id, name, search_text, description, price_cents, stock, created_at, updated_at)
SELECT g, 1, 'Product ' || g, 'product ' || g, '', 1000 + g, 1000000000, now(), now()
FROM generate_series(1, 1000) AS g;
