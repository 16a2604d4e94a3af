//! `Caller`: the authenticated user, as a handler argument.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use crate::auth::AuthUser;
use crate::error::ApiError;

/// The authenticated caller; 401 when the request carried no valid token.
#[derive(Debug, Clone)]
pub struct Caller(pub AuthUser);

impl std::ops::Deref for Caller {
    type Target = AuthUser;
    fn deref(&self) -> &AuthUser {
        &self.0
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<AuthUser>()
                .cloned()
                .map(Caller)
                .ok_or_else(|| ApiError::unauthenticated("this route needs an access token")),
        )
    }
}
