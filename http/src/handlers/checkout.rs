//! `POST /api/v1/checkout`: the cart becomes an order with its payment session (charged when a
//! card is given) and the cart is emptied, in one transaction (see `mall_actors::checkout`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use mall_actors::order::Viewer;
use mall_db::domain::{OrderId, UserId};

use crate::dto::orders::*;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, required_json};
use crate::handlers::orders::address_json;
use crate::idempotency::{self, Reply};
use crate::state::AppState;

type Data = web::Data<AppState>;

/// Turn the caller's cart into an order, open its payment session, and charge `card` if given.
#[utoipa::path(post, path = "/api/v1/checkout", tag = "orders", request_body = CheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CheckoutResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "cart_empty or insufficient_stock", body = ErrorBody)), security(("bearer" = [])))]
pub async fn checkout(
    st: Data,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let parsed: CheckoutRequest = required_json(&req, &body)?;
    let address = address_json(&parsed.address, "address")?;
    check_note(parsed.note.as_deref())?;
    let user = caller.id;
    let deadline = st.deadline();
    idempotency::guard(
        &st.db,
        user,
        &req,
        &body,
        |idem| async {
            let card = parsed.card.map(Into::into);
            let (order, payment) = st
                .checkout
                .run(UserId(user), address, parsed.note, card, idem, deadline)
                .await?;
            Ok(Reply::new(
                StatusCode::CREATED,
                CheckoutResponse {
                    order: OrderDto::from(&order),
                    payment: PaymentDto::from(&payment),
                },
            ))
        },
        |resource| {
            let st = &st;
            async move {
                let id = OrderId(idempotency::resource_id(&resource, "order")?);
                let viewer = Viewer {
                    user: UserId(user),
                    admin: false,
                };
                let deadline = st.deadline();
                let order = st.orders.get(viewer, id, deadline).await?;
                let sessions = st.orders.payments_of(viewer, id, 1, 100, deadline).await?;
                // The checkout died after placing the order: finish it by opening the session.
                let payment = match sessions.items.last() {
                    Some(p) => p.clone(),
                    None => st.payments.open(UserId(user), id, None, deadline).await?.0,
                };
                Ok(Reply::new(
                    StatusCode::CREATED,
                    CheckoutResponse {
                        order: OrderDto::from(&order),
                        payment: PaymentDto::from(&payment),
                    },
                ))
            }
        },
    )
    .await
}
