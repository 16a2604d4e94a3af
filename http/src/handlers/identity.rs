//! `/api/v1/users`, `/api/v1/users/me` and `/api/v1/auth/*`.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::identity;
use crate::dto::identity::*;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, Json, optional_json};
use crate::state::AppState;

type Data = web::Data<AppState>;

/// Register an account.
#[utoipa::path(post, path = "/api/v1/users", tag = "identity", request_body = RegisterRequest,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 409, description = "email_taken", body = ErrorBody)))]
pub async fn register(st: Data, body: Json<RegisterRequest>) -> Result<HttpResponse, ApiError> {
    let user = identity::register(&st, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(user))
}

/// Log in: a new token pair.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid_credentials", body = ErrorBody), (status = 403, description = "user_banned", body = ErrorBody)))]
pub async fn login(st: Data, body: Json<LoginRequest>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(identity::login(&st, body.into_inner()).await?))
}

/// Spend a refresh token for a new pair.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "identity", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "unauthenticated or refresh_token_reused", body = ErrorBody)))]
pub async fn refresh(st: Data, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(identity::refresh(&st, body.into_inner()).await?))
}

/// End this login (and optionally the one of a refresh token).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "identity", request_body(content = Option<LogoutRequest>),
    responses((status = 204, description = "logged out"), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn logout(
    st: Data,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: LogoutRequest = optional_json(&req, &body)?;
    identity::logout(&st, &caller, body).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Introspect the access token.
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "identity",
    responses((status = 200, body = VerifyResponse), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn verify(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(identity::verify(&caller))
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "identity",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn me(st: Data, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(identity::me(&st, &caller).await?))
}

/// Change the caller's name or password.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "identity", request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn update_me(
    st: Data,
    caller: Caller,
    body: Json<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(identity::update_me(&st, &caller, body.into_inner()).await?))
}

/// Close the caller's account.
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "identity", request_body = CloseAccountRequest,
    responses((status = 204, description = "closed"), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn close_me(
    st: Data,
    caller: Caller,
    body: Json<CloseAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    identity::close_me(&st, &caller, body.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
