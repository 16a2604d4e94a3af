//! Micro benchmarks of the per-request access checks: matching a request against the compiled
//! RBAC policy, and verifying an access token.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use mall_http::auth::jwt::{Algorithm, JwtSettings, KeyMaterial, TokenService};
use mall_http::auth::policy::{Effect, Policy, Rule, normalize_path};

fn customer_rules() -> Vec<Rule> {
    [
        ("GET", "/api/v1/auth/verify"),
        ("POST", "/api/v1/auth/logout"),
        ("*", "/api/v1/users/me"),
        ("*", "/api/v1/cart(/.*)?"),
        ("*", "/api/v1/orders(/.*)?"),
        ("POST", "/api/v1/checkout"),
        ("*", "/api/v1/payments(/.*)?"),
    ]
    .into_iter()
    .map(|(m, p)| Rule {
        method: m.into(),
        path: p.into(),
        effect: Effect::Allow,
    })
    .collect()
}

fn policy(c: &mut Criterion) {
    let customer = customer_rules();
    let admin = vec![Rule {
        method: "*".into(),
        path: "/.*".into(),
        effect: Effect::Allow,
    }];
    let deny = vec![Rule {
        method: "*".into(),
        path: "/api/v1/admin/.*".into(),
        effect: Effect::Deny,
    }];
    let policy = Policy::compile([
        ("customer", customer.as_slice()),
        ("admin", admin.as_slice()),
        ("no-admin", deny.as_slice()),
    ])
    .unwrap_or_else(|e| panic!("policy: {e}"));
    let roles = vec!["customer".to_owned(), "no-admin".to_owned()];
    c.bench_function("policy/normalize+is_allowed", |b| {
        b.iter(|| {
            let path = normalize_path(black_box("/api/v1/orders/251535701252448256/cancel"))
                .unwrap_or_default();
            black_box(policy.is_allowed(&roles, "POST", &path))
        })
    });
}

fn tokens(c: &mut Criterion) {
    let service = TokenService::new(JwtSettings {
        algorithm: Algorithm::Hs256,
        key: KeyMaterial::Secret("a-benchmark-secret-of-enough-length".into()),
        issuer: "mall".into(),
        audience: "mall-api".into(),
        access_ttl_secs: 900,
        leeway_secs: 0,
    })
    .unwrap_or_else(|e| panic!("token service: {e}"));
    let token = service
        .issue(
            251_535_701_252_448_256,
            251_535_701_449_580_544,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap_or_else(|e| panic!("issue: {e}"))
        .token;
    c.bench_function("jwt/verify_hs256", |b| {
        b.iter(|| black_box(service.verify(black_box(&token)).is_ok()))
    });
}

criterion_group!(benches, policy, tokens);
criterion_main!(benches);
