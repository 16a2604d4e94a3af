//! The HTTP ceiling: a bare actix-web server answering one route with a fixed product-sized
//! JSON body, to measure with the same load tool as the mall (`GET /product`). What the mall
//! serves for `GET /api/v1/products/{id}` can be read as a fraction of this.
//!
//! `cargo run --release -p mall-bench --bin http-ceiling -- 127.0.0.1:18990`

use actix_web::{App, HttpResponse, HttpServer, web};

const BODY: &str = r#"{"id":"251550924522749952","name":"Tea","description":"green tea","price_cents":1250,"stock":10,"categories":["drinks"],"image_url":null,"merchant_id":"251550916508844032","created_at":"2026-11-26T02:56:30.099574Z","updated_at":"2026-11-26T02:56:30.099574Z"}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18990".to_owned());
    HttpServer::new(|| {
        App::new().route(
            "/product",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(BODY)
            }),
        )
    })
    .bind(bind)?
    .run()
    .await
}
