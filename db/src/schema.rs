//! The Diesel table definitions shared by both backends (kept by hand, in step with `migrations/`).

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        email_norm -> Text,
        name -> Text,
        password_hash -> Text,
        banned_at -> Nullable<Timestamp>,
        ban_reason -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        password_changed_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    permissions (role_name, position) {
        role_name -> Text,
        position -> Integer,
        method -> Text,
        path -> Text,
        effect -> Text,
    }
}

diesel::table! {
    user_roles (user_id, role_name) {
        user_id -> BigInt,
        role_name -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        user_id -> BigInt,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoke_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> BigInt,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        spent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    policy_state (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    products (id) {
        id -> BigInt,
        merchant_id -> BigInt,
        name -> Text,
        search_text -> Text,
        description -> Text,
        price_cents -> BigInt,
        stock -> BigInt,
        image_url -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    product_categories (product_id, category) {
        product_id -> BigInt,
        category -> Text,
    }
}

diesel::table! {
    carts (user_id) {
        user_id -> BigInt,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    cart_lines (user_id, product_id) {
        user_id -> BigInt,
        product_id -> BigInt,
        quantity -> Integer,
        position -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        user_id -> BigInt,
        status -> Text,
        total_cents -> BigInt,
        address -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expires_at -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        cancel_reason -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    order_items (order_id, position) {
        order_id -> BigInt,
        position -> Integer,
        product_id -> BigInt,
        name -> Text,
        unit_price_cents -> BigInt,
        quantity -> Integer,
        line_total_cents -> BigInt,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        order_id -> BigInt,
        user_id -> BigInt,
        amount_cents -> BigInt,
        status -> Text,
        card_last4 -> Nullable<Text>,
        last_error -> Nullable<Text>,
        attempts -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expires_at -> Timestamp,
        succeeded_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (user_id, idem_key) {
        user_id -> BigInt,
        idem_key -> Text,
        fingerprint -> Text,
        resource -> Nullable<Text>,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    shard_epochs (shard) {
        shard -> Integer,
        epoch -> BigInt,
        node_id -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(permissions -> roles (role_name));
diesel::joinable!(orders -> users (user_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(products -> users (merchant_id));
diesel::joinable!(product_categories -> products (product_id));
diesel::joinable!(carts -> users (user_id));
diesel::joinable!(cart_lines -> carts (user_id));
diesel::joinable!(cart_lines -> products (product_id));
diesel::joinable!(user_roles -> roles (role_name));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    shard_epochs,
    roles,
    permissions,
    user_roles,
    sessions,
    refresh_tokens,
    policy_state,
    products,
    product_categories,
    carts,
    cart_lines,
    orders,
    order_items,
    payments,
    idempotency_keys,
);
