//! A customer's checkout, as the tests here need it: a product, a user with it in the cart, and
//! `POST /api/v1/checkout` with a good card.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Resp, Server};

/// Makes a product (as the admin) and a user with two of it in the cart; returns the user's token.
pub async fn ready_to_check_out(app: &Server) -> String {
    let admin = app.admin().await;
    let product = app
        .post(
            "/api/v1/products",
            Some(&admin.access),
            &json!({
                "name": "lamp",
                "description": "a lamp, for the observability tests",
                "price_cents": 1999,
                "stock": 10,
                "categories": ["observability"],
            }),
        )
        .await
        .expect(201);
    let user = app.new_user("observer").await;
    let token = user.access().to_owned();
    app.post(
        "/api/v1/cart/items",
        Some(&token),
        &json!({"product_id": product["id"], "quantity": 2}),
    )
    .await
    .expect(200);
    token
}

/// Checks the cart out with a good card, with extra headers.
pub async fn checkout(app: &Server, token: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = app
        .request(Method::POST, "/api/v1/checkout")
        .bearer(token)
        .json(&json!({
            "address": {
                "name": "Ada Lovelace",
                "phone": "+44 20 7946 0000",
                "line1": "12 St James's Square",
                "city": "London",
                "postal_code": "SW1Y 4JH",
                "country": "GB",
            },
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
        }));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.send().await
}
