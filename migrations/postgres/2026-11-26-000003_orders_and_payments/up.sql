-- Orders (with a copy of what was bought), payment sessions, and idempotency records.

CREATE TABLE orders (
    id            BIGINT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    status        TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'cancelled')),
    total_cents   BIGINT NOT NULL CHECK (total_cents >= 0),
    -- the shipping address as a JSON object (portable: no JSONB)
    address       TEXT NOT NULL,
    note          TEXT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    paid_at       TIMESTAMP NULL,
    cancelled_at  TIMESTAMP NULL,
    cancel_reason TEXT NULL CHECK (cancel_reason IN ('user', 'expired', 'account_closed', 'admin')),
    version       BIGINT NOT NULL DEFAULT 1,
    -- never both paid and cancelled
    CHECK (NOT (paid_at IS NOT NULL AND cancelled_at IS NOT NULL))
);
CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_deadline_idx ON orders (status, expires_at);

CREATE TABLE order_items (
    order_id         BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    product_id       BIGINT NOT NULL REFERENCES products (id),
    name             TEXT NOT NULL,
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    line_total_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);

CREATE TABLE payments (
    id           BIGINT PRIMARY KEY,
    order_id     BIGINT NOT NULL REFERENCES orders (id),
    user_id      BIGINT NOT NULL REFERENCES users (id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'cancelled', 'expired')),
    card_last4   TEXT NULL,
    last_error   TEXT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    succeeded_at TIMESTAMP NULL,
    cancelled_at TIMESTAMP NULL,
    version      BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX payments_order_idx ON payments (order_id, created_at);
CREATE INDEX payments_deadline_idx ON payments (status, expires_at);
-- An order is charged at most once, and has at most one open session.
CREATE UNIQUE INDEX payments_one_success_uq ON payments (order_id) WHERE status = 'succeeded';
CREATE UNIQUE INDEX payments_one_pending_uq ON payments (order_id) WHERE status = 'pending';

-- Idempotency-Key records, written in the same transaction as the effect they guard.
CREATE TABLE idempotency_keys (
    user_id         BIGINT NOT NULL REFERENCES users (id),
    idem_key        TEXT NOT NULL,
    -- method, path and a hash of the body: the same key with another request is refused
    fingerprint     TEXT NOT NULL,
    -- what the request made (`order:ID`, `payment:ID`), set in the effect's own transaction
    resource        TEXT NULL,
    response_status INTEGER NULL,
    response_body   TEXT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
