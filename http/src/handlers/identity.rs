//! `/api/v1/users`, `/api/v1/users/me` and `/api/v1/auth/*`.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::dto::identity::*;
use crate::dto::rfc3339;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, Json, optional_json};
use crate::services::ServiceError;
use crate::services::accounts::{Account, ProfileChange, normalised_email};
use crate::services::sessions::Login;
use crate::state::AppState;

type Data = web::Data<AppState>;

fn user_view(account: Account) -> UserView {
    UserView::of(&account.user, account.roles)
}

/// The token pair of a login: the access token is minted here, at the edge.
fn token_pair(st: &AppState, login: Login) -> Result<TokenPair, ApiError> {
    let access = st
        .tokens
        .issue(
            login.user_id,
            login.session_id,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| ApiError::internal(&e))?;
    Ok(TokenPair {
        access_token: access.token,
        refresh_token: login.refresh_token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_expires_in: st.sessions.refresh_ttl().as_secs(),
    })
}

/// Register an account.
#[utoipa::path(post, path = "/api/v1/users", tag = "identity", request_body = RegisterRequest,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 409, description = "email_taken", body = ErrorBody)))]
pub async fn register(st: Data, body: Json<RegisterRequest>) -> Result<HttpResponse, ApiError> {
    let RegisterRequest {
        email,
        password,
        name,
    } = body.into_inner();
    let account = st.accounts.register(email, password, name).await?;
    Ok(HttpResponse::Created().json(user_view(account)))
}

/// Log in: a new token pair.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid_credentials", body = ErrorBody), (status = 403, description = "user_banned", body = ErrorBody)))]
pub async fn login(st: Data, body: Json<LoginRequest>) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password } = body.into_inner();
    // The failed-login budget is per account: an edge limit, like the per-IP ones.
    let account = normalised_email(&email);
    st.limits.login_allowed(&account).await?;
    let login = match st.sessions.login(&email, password).await {
        Ok(login) => login,
        Err(ServiceError::InvalidCredentials) => {
            st.limits.login_failed(&account).await;
            return Err(ServiceError::InvalidCredentials.into());
        }
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::Ok().json(token_pair(&st, login)?))
}

/// Spend a refresh token for a new pair.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "identity", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "unauthenticated or refresh_token_reused", body = ErrorBody)))]
pub async fn refresh(st: Data, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    let login = st.sessions.renew(&body.into_inner().refresh_token).await?;
    Ok(HttpResponse::Ok().json(token_pair(&st, login)?))
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
    st.sessions
        .logout(caller.id, caller.session_id, body.refresh_token.as_deref())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Introspect the access token.
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "identity",
    responses((status = 200, body = VerifyResponse), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn verify(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(VerifyResponse {
        user_id: caller.id.to_string(),
        roles: caller.roles.clone(),
        expires_at: rfc3339(caller.expires_at),
    })
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "identity",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn me(st: Data, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(user_view(st.accounts.open(caller.id).await?)))
}

/// Change the caller's name or password.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "identity", request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn update_me(
    st: Data,
    caller: Caller,
    body: Json<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let UpdateMeRequest {
        name,
        password,
        current_password,
    } = body.into_inner();
    // `null` is a JSON matter: refused here, before any rule of the account is looked at.
    let nulls: Vec<(&str, String)> = [("name", &name), ("password", &password)]
        .into_iter()
        .filter(|(_, value)| matches!(value, Some(None)))
        .map(|(field, _)| (field, "must not be null".to_owned()))
        .collect();
    if !nulls.is_empty() {
        return Err(ApiError::invalid(nulls));
    }
    let change = ProfileChange {
        name: name.flatten(),
        password: password.flatten(),
        current_password,
    };
    let account = st
        .accounts
        .update_profile(caller.id, caller.session_id, change)
        .await?;
    Ok(HttpResponse::Ok().json(user_view(account)))
}

/// Close the caller's account.
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "identity", request_body = CloseAccountRequest,
    responses((status = 204, description = "closed"), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn close_me(
    st: Data,
    caller: Caller,
    body: Json<CloseAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    st.accounts
        .close_own(caller.id, body.into_inner().password)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
