-- The catalog (products and their categories) and carts (one per user, lines per product).

CREATE TABLE products (
    id          BIGINT PRIMARY KEY,
    merchant_id BIGINT NOT NULL REFERENCES users (id),
    name        TEXT NOT NULL,
    -- lower-cased name and description: case-insensitive search on both backends
    search_text TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    -- what is available to buy; orders take from it, never below zero
    stock       BIGINT NOT NULL CHECK (stock >= 0),
    image_url   TEXT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    -- soft delete: a deleted product leaves the catalog; orders keep their copy
    deleted_at  TIMESTAMP NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX products_merchant_idx ON products (merchant_id);
CREATE INDEX products_newest_idx ON products (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX products_price_idx ON products (price_cents, id) WHERE deleted_at IS NULL;

CREATE TABLE product_categories (
    product_id BIGINT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    category   TEXT NOT NULL,
    PRIMARY KEY (product_id, category)
);
CREATE INDEX product_categories_category_idx ON product_categories (category, product_id);

-- A cart exists once created (POST /cart or a first add); `version` guards every write.
CREATE TABLE carts (
    user_id    BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE cart_lines (
    user_id    BIGINT NOT NULL REFERENCES carts (user_id) ON DELETE CASCADE,
    product_id BIGINT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    -- lines are shown in the order they were first added
    position   BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
