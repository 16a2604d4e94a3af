//! The cart as an entity kind: one per user, a thin shell over [`CartState`]. A turn writes
//! through with a version check (the write itself refuses a line of a deleted or unknown
//! product) before it replies. A checkout is one turn too: the cart is placed as an order and
//! emptied in one transaction, so a line added meanwhile waits for the next turn and stays in
//! the cart.

use std::sync::Arc;

use mall_db::domain::Fence;
use mall_db::repo::carts::{self, WriteOutcome};
use mall_db::repo::fences;
use mall_db::repo::placements::{CheckoutPart, PlaceError, Placement};
use mall_db::{Db, clock};

use super::error::{CartError, CheckoutError};
use super::messages::{CartAnswer, CartCmd, CheckOut};
use super::state::{CartOp, CartState};
use crate::cluster::Ownership;
use crate::placement::Placer;
use crate::runtime::{Deadline, Kind, RuntimeError};

/// What every cart needs.
#[derive(Clone)]
pub struct CartDeps {
    /// The database.
    pub db: Db,
    /// Places the orders of checkouts.
    pub placer: Placer,
    /// Which shards this node owns: a cart lives on its user's shard.
    pub ownership: Arc<Ownership>,
}

/// The cart kind.
pub struct Cart;

/// What a cart's turn answers.
pub type CartReply = Result<CartAnswer, CheckoutError>;

impl Kind for Cart {
    type Key = i64;
    type Deps = CartDeps;
    type State = CartState;
    type Cmd = CartCmd;
    type Reply = CartReply;
    const KIND: &'static str = "cart";

    async fn load(deps: CartDeps, user_id: i64) -> Result<CartState, CartReply> {
        fence_of(&deps, user_id).map_err(|e| Err(e.into()))?;
        load(&deps.db, user_id).await.map_err(|e| Err(e.into()))
    }

    async fn turn(
        deps: CartDeps,
        user_id: i64,
        state: CartState,
        cmd: CartCmd,
        answer_by: Option<Deadline>,
    ) -> (Option<CartState>, CartReply) {
        let fence = match fence_of(&deps, user_id) {
            Ok(fence) => fence,
            Err(e) => return (None, Err(e.into())),
        };
        let (keep, reply) = match cmd {
            CartCmd::Op(op) => {
                let (keep, reply) = execute(&deps.db, fence, user_id, state, op).await;
                (keep, reply.map(CartAnswer::Cart).map_err(Into::into))
            }
            CartCmd::CheckOut(cmd) => {
                let (keep, reply) = check_out(&deps, fence, user_id, state, *cmd, answer_by).await;
                (keep, reply.map(|p| CartAnswer::Placed(Box::new(p))))
            }
        };
        if let Err(e) = &reply
            && let Some(shard) = e.not_owner()
        {
            // A write found a newer epoch: this node lost the shard.
            deps.ownership.fenced(shard);
        }
        (keep, reply)
    }

    fn generation(deps: &CartDeps) -> u64 {
        deps.ownership.generation()
    }

    fn inject_fault(cmd: &CartCmd) {
        #[cfg(feature = "testing")]
        if *cmd == CartCmd::Op(CartOp::Crash) {
            panic!("a cart actor crashed on request (test fault injection)");
        }
        #[cfg(not(feature = "testing"))]
        let _ = cmd;
    }

    fn refused(why: RuntimeError) -> CartReply {
        Err(CheckoutError::Cart(why.into()))
    }
}

/// The right to write the user's cart here, if this node owns the user's shard.
fn fence_of(deps: &CartDeps, user_id: i64) -> Result<Option<Fence>, CartError> {
    let shard = deps.ownership.shard_of(user_id);
    deps.ownership
        .fence(shard)
        .map_err(|_| CartError::NotOwner { shard })
}

async fn load(db: &Db, user_id: i64) -> Result<CartState, CartError> {
    let mut conn = db.read().await?;
    Ok(carts::load(&mut conn, user_id)
        .await?
        .map_or_else(CartState::absent, CartState::from_stored))
}

/// One operation: returns the state to keep cached (None: reload next time) and the reply.
async fn execute(
    db: &Db,
    fence: Option<Fence>,
    user_id: i64,
    mut state: CartState,
    op: CartOp,
) -> (Option<CartState>, Result<CartState, CartError>) {
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
            let version = state.version;
            Ok::<_, CartError>(
                fences::guarded(&mut conn, fence, "carts.write", async |c| {
                    carts::write(c, user_id, version, &plan.writes, now).await
                })
                .await?,
            )
        }
        .await;
        match written {
            Ok(WriteOutcome::Written(version)) => {
                let next = state.applied(&plan, version, now);
                return (Some(next.clone()), Ok(next));
            }
            Ok(WriteOutcome::Conflict) => match load(db, user_id).await {
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

/// A checkout: the state to keep cached (None: reload next time) and the reply.
async fn check_out(
    deps: &CartDeps,
    fence: Option<Fence>,
    user_id: i64,
    mut state: CartState,
    cmd: CheckOut,
    answer_by: Option<Deadline>,
) -> (
    Option<CartState>,
    Result<mall_db::repo::placements::Placed, CheckoutError>,
) {
    // The caller's deadline goes on to the placement (the handle always sends one).
    let Some(answer_by) = answer_by else {
        let bug = CartError::Internal("a checkout was sent without its caller's deadline".into());
        return (Some(state), Err(bug.into()));
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
            fence,
            checkout: Some(CheckoutPart {
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
            // The cart is as it was: keep it cached.
            Err(e @ PlaceError::Refused(_)) => {
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
