//! Who may pass. [`blacklist`] wraps the whole application: a refused client network gets 403
//! whatever it asks. [`access`] wraps each route, so it runs only once the router has found
//! the route and its method (an unknown path is 404 and another method 405, for anyone, before
//! any token is looked at): the bearer token (authentication), the rate limit (per user with a
//! valid token, else per client IP; `/api/` routes only), then the RBAC policy (authorization)
//! over the normalised path. Whitelisted routes skip the last two, though a valid token on
//! them still identifies the caller.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use crate::auth::AuthUser;
use crate::auth::policy::normalize_path;
use crate::error::ApiError;
use crate::state::AppState;

fn bearer(req: &ServiceRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthenticated(
            "expected Authorization: Bearer <token>",
        )),
    }
}

/// Refuses requests from the configured client networks (`auth.ip_blacklist`) with 403.
pub async fn blacklist<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let refused = req.app_data::<web::Data<AppState>>().is_some_and(|state| {
        req.peer_addr()
            .map(|a| a.ip())
            .is_some_and(|ip| state.ip_blacklist.iter().any(|net| net.contains(&ip)))
    });
    if refused {
        let refusal = ApiError::forbidden("requests from this address are refused");
        return Ok(req.error_response(refusal).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The per-route middleware function (see the module doc). A refusal is answered here, as a
/// response (not an `Err`), so the outer layers still see and tag it.
pub async fn access<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match admit(&req).await {
        Ok(user) => {
            if let Some(user) = user {
                tracing::Span::current().record("user_id", user.id);
                req.extensions_mut().insert::<AuthUser>(user);
            }
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(refusal) => Ok(req.error_response(refusal).map_into_right_body()),
    }
}

/// A request without a valid token is still counted against its client IP: a flood of forged
/// tokens gets 429 like any other anonymous flood, not an endless stream of 401s.
async fn refused_anonymous(
    state: &AppState,
    peer: Option<std::net::IpAddr>,
    path: &str,
    refusal: ApiError,
) -> ApiError {
    if let (Some(ip), true) = (peer, path.starts_with("/api/"))
        && let Err(limited) = state.limits.check_ip(ip).await
    {
        return limited;
    }
    refusal
}

/// Decides whether the request may pass, and as whom.
async fn admit(req: &ServiceRequest) -> Result<Option<AuthUser>, ApiError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(ApiError::internal(&"application state missing"));
    };
    let peer = req.peer_addr().map(|a| a.ip());
    let path = normalize_path(req.uri().path())
        .map_err(|_| ApiError::bad_request("malformed request path"))?;
    let method = req.method().as_str();
    let whitelisted = state.whitelist.matches(method, &path);
    let user = match bearer(req) {
        Ok(Some(token)) => match state.auth.authenticate(token).await {
            Ok(user) => Some(user),
            // A bad token on an open route is ignored: the caller is simply anonymous.
            Err(_) if whitelisted => None,
            Err(e) => return Err(refused_anonymous(state, peer, &path, e).await),
        },
        Ok(None) => None,
        Err(_) if whitelisted => None,
        Err(e) => return Err(refused_anonymous(state, peer, &path, e).await),
    };
    // A forwarded request was counted by the node its client called.
    let forwarded = req
        .extensions()
        .get::<crate::forward::Forwarded>()
        .is_some();
    if path.starts_with("/api/") && !forwarded {
        match (&user, peer) {
            (Some(u), _) => state.limits.check_user(u.id).await?,
            (None, Some(ip)) => state.limits.check_ip(ip).await?,
            (None, None) => {}
        }
    }
    if whitelisted {
        return Ok(user);
    }
    let Some(user) = user else {
        return Err(ApiError::unauthenticated(
            "this route needs an access token",
        ));
    };
    if !state
        .policy
        .snapshot()
        .is_allowed(&user.roles, method, &path)
    {
        return Err(ApiError::forbidden("your roles do not allow this request"));
    }
    Ok(Some(user))
}
