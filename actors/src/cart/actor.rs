//! `CartActor`: one per user, a thin shell over [`CartState`]: it loads the cart on its first
//! turn, writes through with a version check (the write itself refuses a line of a deleted or
//! unknown product), and only then replies. Turns never interleave (`AtomicResponse`). A
//! checkout is one turn too: the cart is placed as an order and emptied in one transaction, so
//! a line added meanwhile waits for the next turn and stays in the cart.

use std::time::Instant;

use actix::{Actor, Context, Handler};

use mall_db::repo::carts::{self, WriteOutcome};
use mall_db::repo::placements::{PlaceError, Placed, Placement};
use mall_db::{Db, clock};

use super::error::CartError;
use super::messages::CheckOut;
use super::state::{CartOp, CartState};
use crate::checkout::CheckoutError;
use crate::placement::Placer;
use crate::runtime::turn;
use crate::runtime::{Call, Entity, KindMetrics};

/// What every cart actor needs.
#[derive(Clone)]
pub struct CartDeps {
    /// The database.
    pub db: Db,
    /// Places the orders of checkouts.
    pub placer: Placer,
}

/// The cart of one user.
pub struct CartActor {
    user_id: i64,
    deps: CartDeps,
    // None until loaded, and again after a failure that may have left it stale.
    state: Option<CartState>,
    metrics: KindMetrics,
}

impl Actor for CartActor {
    type Context = Context<Self>;
}

impl Entity for CartActor {
    type Key = i64;
    type Deps = CartDeps;
    const KIND: &'static str = "cart";

    fn activate(user_id: i64, deps: CartDeps, metrics: KindMetrics) -> Self {
        CartActor {
            user_id,
            deps,
            state: None,
            metrics,
        }
    }
}

impl Handler<Call<CartOp>> for CartActor {
    type Result = actix::AtomicResponse<Self, Result<CartState, CartError>>;

    fn handle(&mut self, call: Call<CartOp>, _ctx: &mut Context<Self>) -> Self::Result {
        #[cfg(feature = "testing")]
        if call.cmd == CartOp::Crash {
            panic!(
                "cart actor {} crashed on request (test fault injection)",
                self.user_id
            );
        }
        if call.is_stale() {
            return turn::refuse(Err(CartError::Unavailable(
                "the caller stopped waiting".into(),
            )));
        }
        let (db, user_id, cached, op) = (
            self.deps.db.clone(),
            self.user_id,
            self.state.clone(),
            call.cmd,
        );
        turn::atomic(
            self,
            call.sent_at,
            call.span,
            &self.metrics,
            execute(db, user_id, cached, op),
            |(keep, reply), act: &mut Self, _ctx| {
                act.state = keep;
                reply
            },
        )
    }
}

impl Handler<Call<CheckOut>> for CartActor {
    type Result = actix::AtomicResponse<Self, Result<Placed, CheckoutError>>;

    fn handle(&mut self, call: Call<CheckOut>, _ctx: &mut Context<Self>) -> Self::Result {
        if call.is_stale() {
            return turn::refuse(Err(CheckoutError::Cart(CartError::Unavailable(
                "the caller stopped waiting".into(),
            ))));
        }
        let (deps, user_id, cached) = (self.deps.clone(), self.user_id, self.state.clone());
        turn::atomic(
            self,
            call.sent_at,
            call.span,
            &self.metrics,
            check_out(deps, user_id, cached, call.cmd, call.answer_by),
            |(keep, reply), act: &mut Self, _ctx| {
                act.state = keep;
                reply
            },
        )
    }
}

async fn load(db: &Db, user_id: i64) -> Result<CartState, CartError> {
    let mut conn = db.read().await?;
    Ok(carts::load(&mut conn, user_id)
        .await?
        .map_or_else(CartState::absent, CartState::from_stored))
}

/// One turn: returns the state to keep cached (None: reload next time) and the reply.
async fn execute(
    db: Db,
    user_id: i64,
    cached: Option<CartState>,
    op: CartOp,
) -> (Option<CartState>, Result<CartState, CartError>) {
    let mut state = match cached {
        Some(s) => s,
        None => match load(&db, user_id).await {
            Ok(s) => s,
            Err(e) => return (None, Err(e)),
        },
    };
    // Two attempts: a version conflict means someone else wrote the cart (another node, or a
    // stale actor after a takeover); reload and apply the operation to the fresh state once.
    for _ in 0..2 {
        let plan = match state.plan(&op) {
            Ok(Some(plan)) => plan,
            Ok(None) => return (Some(state.clone()), Ok(state)),
            Err(refused) => return (Some(state), Err(refused)),
        };
        let now = clock::now();
        let written = async {
            let mut conn = db.write().await?;
            Ok::<_, CartError>(
                carts::write(&mut conn, user_id, state.version, &plan.writes, now).await?,
            )
        }
        .await;
        match written {
            Ok(WriteOutcome::Written(version)) => {
                let next = state.applied(&plan, version, now);
                return (Some(next.clone()), Ok(next));
            }
            Ok(WriteOutcome::Conflict) => match load(&db, user_id).await {
                Ok(fresh) => state = fresh,
                Err(e) => return (None, Err(e)),
            },
            Ok(WriteOutcome::ProductGone(_)) => {
                return (Some(state), Err(CartError::ProductNotFound));
            }
            Err(e) => return (None, Err(e)),
        }
    }
    (
        None,
        Err(CartError::Unavailable(
            "the cart kept changing under this write".into(),
        )),
    )
}

/// A checkout's turn: the state to keep cached (None: reload next time) and the reply.
async fn check_out(
    deps: CartDeps,
    user_id: i64,
    cached: Option<CartState>,
    cmd: CheckOut,
    answer_by: Option<Instant>,
) -> (Option<CartState>, Result<Placed, CheckoutError>) {
    // The caller's deadline goes on to the placement (the handle always sends one).
    let Some(answer_by) = answer_by else {
        let bug = CartError::Internal("a checkout was sent without its caller's deadline".into());
        return (cached, Err(bug.into()));
    };
    let mut state = match cached {
        Some(s) => s,
        None => match load(&deps.db, user_id).await {
            Ok(s) => s,
            Err(e) => return (None, Err(e.into())),
        },
    };
    // As for writes: a cart changed by another writer is reloaded and checked out once more.
    for _ in 0..2 {
        let Some((cart_version, lines)) = state.to_order() else {
            return (Some(state), Err(CheckoutError::CartEmpty));
        };
        let placement = Placement {
            order: cmd.order.clone(),
            lines,
            now: cmd.now,
            idem: cmd.idem.clone(),
            checkout: Some(mall_db::repo::placements::CheckoutPart {
                cart_version,
                session_id: cmd.session_id,
                session_expires_at: cmd.session_expires_at,
                charge: cmd.charge.clone(),
            }),
        };
        match deps.placer.place(placement, answer_by).await {
            Ok(placed) => {
                let version = placed.cart_version.unwrap_or(cart_version + 1);
                return (Some(CartState::emptied(version, cmd.now)), Ok(placed));
            }
            Err(PlaceError::CartChanged) => match load(&deps.db, user_id).await {
                Ok(fresh) => state = fresh,
                Err(e) => return (None, Err(e.into())),
            },
            Err(e @ (PlaceError::ProductNotFound(_) | PlaceError::InsufficientStock { .. })) => {
                return (Some(state), Err(CheckoutError::Order(e.into())));
            }
            Err(e) => return (None, Err(CheckoutError::Order(e.into()))),
        }
    }
    (
        None,
        Err(CheckoutError::Cart(CartError::Unavailable(
            "the cart kept changing under this checkout".into(),
        ))),
    )
}
