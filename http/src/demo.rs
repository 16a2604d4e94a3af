//! A demo catalog, so that a mall started with no configuration has something to sell: when
//! `bootstrap.demo_catalog` asks for it and the catalog is empty at start-up, a demo merchant
//! account (which nobody can log in to: its password is random and thrown away) puts a few
//! products on sale.

use crate::config::{Config, DEFAULT_DATABASE_URL};
use crate::services::ServiceError;
use crate::services::accounts::Accounts;
use crate::services::catalog::{Catalog, ProductDraft, Search};
use crate::services::password::new_refresh_token;

/// The demo merchant's e-mail.
pub const DEMO_MERCHANT_EMAIL: &str = "demo-merchant@example.com";

/// (name, description, price in cents, stock, categories)
const PRODUCTS: [(&str, &str, i64, i64, &[&str]); 8] = [
    (
        "Bamboo tea set",
        "A pot and six cups, hand-finished.",
        12_800,
        20,
        &["kitchen", "tea"],
    ),
    (
        "Jasmine green tea, 100 g",
        "Loose leaves from Fujian.",
        4_500,
        50,
        &["tea"],
    ),
    (
        "Silk scarf",
        "90 × 90 cm, mulberry silk.",
        19_900,
        12,
        &["fashion"],
    ),
    (
        "Ring light",
        "For short videos: three colour temperatures, phone clamp.",
        8_900,
        30,
        &["video", "electronics"],
    ),
    (
        "Clip-on microphone",
        "Wireless, 20 m range, USB-C receiver.",
        15_900,
        25,
        &["video", "electronics"],
    ),
    (
        "Phone tripod",
        "Folds to 20 cm, Bluetooth remote.",
        6_900,
        40,
        &["video"],
    ),
    (
        "Canvas tote bag",
        "Heavy cotton, inside pocket.",
        3_900,
        60,
        &["fashion"],
    ),
    (
        "Ceramic mug",
        "350 ml, dishwasher safe.",
        2_900,
        80,
        &["kitchen"],
    ),
];

/// Whether this configuration wants the demo catalog: `on`, or `auto` with the built-in
/// database (a mall started with `cargo run` and nothing else).
pub fn wanted(config: &Config) -> bool {
    match config.bootstrap.demo_catalog.as_str() {
        "on" => true,
        "auto" => config.database.url == DEFAULT_DATABASE_URL,
        _ => false,
    }
}

/// Puts the demo products on sale if the catalog is empty.
pub async fn ensure(
    config: &Config,
    accounts: &Accounts,
    catalog: &Catalog,
) -> Result<(), ServiceError> {
    if !wanted(config) {
        return Ok(());
    }
    if catalog.list(&Search::default(), 1, 1).await?.total > 0 {
        return Ok(());
    }
    let password = new_refresh_token();
    let merchant = match accounts
        .register(
            DEMO_MERCHANT_EMAIL.to_owned(),
            password,
            "Demo shop".to_owned(),
        )
        .await
    {
        Ok(account) => account.user.id,
        // A catalog emptied by hand: the demo merchant exists already and stays as it is.
        Err(ServiceError::EmailTaken) => return Ok(()),
        Err(e) => return Err(e),
    };
    accounts
        .set_roles(merchant, &["merchant".to_owned()])
        .await?;
    for (name, description, price_cents, stock, categories) in PRODUCTS {
        let draft = ProductDraft {
            name: name.to_owned(),
            description: Some(description.to_owned()),
            price_cents,
            stock,
            categories: Some(categories.iter().map(|c| (*c).to_owned()).collect()),
            image_url: None,
        };
        catalog.create(merchant, draft).await?;
    }
    tracing::info!(products = PRODUCTS.len(), "demo catalog created");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_means_the_built_in_database_only() {
        let mut config = Config::default();
        assert!(wanted(&config), "`cargo run` with no configuration");
        config.database.url = "postgres://postgres@127.0.0.1/mall".into();
        assert!(!wanted(&config));
        config.bootstrap.demo_catalog = "on".into();
        assert!(wanted(&config));
        config.database.url = DEFAULT_DATABASE_URL.into();
        config.bootstrap.demo_catalog = "off".into();
        assert!(!wanted(&config));
    }

    #[test]
    fn demo_products_fit_the_catalog_rules() {
        for (name, description, price, stock, categories) in PRODUCTS {
            assert!((1..=200).contains(&name.chars().count()), "{name}");
            assert!(!description.is_empty());
            assert!(price > 0 && stock > 0, "{name}");
            assert!(!categories.is_empty(), "{name}");
        }
    }
}
