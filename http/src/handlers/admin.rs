//! `/api/v1/admin/*`: users and roles.

use actix_web::{HttpResponse, web};

use mall_db::repo::roles::NewPermission;

use crate::auth::identity::parse_id;
use crate::dto::identity::*;
use crate::dto::{PageQuery, Paged};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, Json, Query};
use crate::services::accounts::Account;
use crate::state::AppState;

type Data = web::Data<AppState>;

fn admin_view(account: Account) -> AdminUserView {
    AdminUserView::of(&account.user, account.roles)
}

/// Look users up by part of their email.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(UserSearch, PageQuery),
    responses((status = 200, body = inline(crate::dto::Paged<AdminUserView>)), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_users(
    st: Data,
    search: Query<UserSearch>,
    page: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, size) = page.into_inner().resolve()?;
    let found = st
        .accounts
        .list(search.email.as_deref(), page, size)
        .await?;
    Ok(
        HttpResponse::Ok().json(Paged::of(found, page, size, |(user, roles)| {
            AdminUserView::of(&user, roles)
        })),
    )
}

/// One user.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = AdminUserView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_user(st: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "user")?;
    Ok(HttpResponse::Ok().json(admin_view(st.accounts.get(id).await?)))
}

/// Replace a user's roles.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/roles", tag = "admin", params(("id" = String, Path)), request_body = SetRolesRequest,
    responses((status = 200, body = AdminUserView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn set_roles(
    st: Data,
    id: web::Path<String>,
    body: Json<SetRolesRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "user")?;
    let account = st.accounts.set_roles(id, &body.into_inner().roles).await?;
    Ok(HttpResponse::Ok().json(admin_view(account)))
}

/// Ban a user: their tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/ban", tag = "admin", params(("id" = String, Path)), request_body = BanRequest,
    responses((status = 204, description = "banned"), (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_state: an admin cannot ban their own account", body = ErrorBody)), security(("bearer" = [])))]
pub async fn ban(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
    body: Json<BanRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "user")?;
    st.accounts
        .set_ban(caller.id, id, Some(body.into_inner().reason))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lift a ban.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/ban", tag = "admin", params(("id" = String, Path)),
    responses((status = 204, description = "ban lifted"), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn unban(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "user")?;
    st.accounts.set_ban(caller.id, id, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Close a user's account.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 204, description = "closed"), (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_state: an admin closes their own account through /users/me", body = ErrorBody)), security(("bearer" = [])))]
pub async fn close_user(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "user")?;
    st.accounts.close_by_admin(caller.id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every role with its permissions.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "admin", params(PageQuery),
    responses((status = 200, body = inline(crate::dto::Paged<RoleView>)), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_roles(st: Data, page: Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let (page, size) = page.into_inner().resolve()?;
    let found = st.roles.list(page, size).await?;
    Ok(HttpResponse::Ok().json(Paged::of(found, page, size, |r| RoleView::of(&r))))
}

/// Create or replace a role.
#[utoipa::path(put, path = "/api/v1/admin/roles/{name}", tag = "admin", params(("name" = String, Path)), request_body = PutRoleRequest,
    responses((status = 200, body = RoleView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn put_role(
    st: Data,
    name: web::Path<String>,
    body: Json<PutRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let permissions: Vec<NewPermission> = body
        .into_inner()
        .permissions
        .into_iter()
        .map(|p| NewPermission {
            method: p.method,
            path: p.path,
            effect: p.effect,
        })
        .collect();
    let role = st.roles.put(&name, &permissions).await?;
    Ok(HttpResponse::Ok().json(RoleView::of(&role)))
}

/// Delete a role (not `admin`).
#[utoipa::path(delete, path = "/api/v1/admin/roles/{name}", tag = "admin", params(("name" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_role(st: Data, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    st.roles.delete(&name).await?;
    Ok(HttpResponse::NoContent().finish())
}
