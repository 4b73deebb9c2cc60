//! The people of the reference scenario (`--review-above`, `--call-customer`): sales reviews
//! large orders before they are paid; customer service calls customers whose card expired,
//! and what it has not called by the due date goes to the supervisors. Simulated clerks claim
//! and complete the tasks through the engine's task API, as a task list application would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use longrun::definition::{Reassign, TimerSpec, UserTask};
use longrun::expr::Type;
use longrun::store::{Task, TaskQuery};
use longrun::{Engine, Message};

/// Who takes part, from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct People {
    /// Orders above this amount wait for a review by sales before payment.
    pub review_above: Option<u32>,
    /// An expired card gets customer service a task to call the customer.
    pub call_customer: bool,
}

/// The review task: for the group `sales`, due in two days; it says whether the order is
/// approved.
pub fn review_task() -> UserTask {
    UserTask::new()
        .candidate_groups(["sales"])
        .due("P2D")
        .field("approved", Type::Boolean)
}

/// The call task: for customer service, due in seven days; it says whether the customer was
/// reached.
pub fn call_task() -> UserTask {
    UserTask::new()
        .candidate_groups(["customer_service"])
        .due("P7D")
        .priority(80)
        .field("reached", Type::Boolean)
}

/// Overdue calls go to the supervisors.
pub fn call_escalation() -> (TimerSpec, Reassign) {
    (
        TimerSpec::After("P7D".into()),
        Reassign {
            candidate_groups: Some(vec!["supervisors".into()]),
            ..Reassign::default()
        },
    )
}

/// What the clerks did.
#[derive(Debug, Default)]
pub struct Done {
    /// Reviews approved by sales.
    pub reviews: AtomicUsize,
    /// Calls made by customer service.
    pub calls: AtomicUsize,
    /// Calls made by supervisors after the escalation.
    pub escalated_calls: AtomicUsize,
}

/// The order index at the end of a business key (`<run>-000042`).
fn index(key: &str) -> usize {
    key.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Claim a task and complete it with `variables`; whether it was this clerk's to complete.
async fn take(engine: &Engine, me: &str, t: &Task, variables: serde_json::Value) -> bool {
    engine.claim(t.task_id, me).await.is_ok()
        && engine.complete(t.task_id, me, variables).await.is_ok()
}

/// Run the clerks until aborted, each in a loop of their own: `ann` (sales) approves every
/// review; `carl` (customer service) calls the customers of even-numbered orders only (the
/// others wait past their due date and are escalated); `sue` (supervisors) calls those. A
/// customer who meant to update their card does so once called (`will_update(order index)`).
pub fn clerks(
    engine: Engine,
    will_update: Arc<dyn Fn(usize) -> bool + Send + Sync>,
) -> (Arc<Done>, tokio::task::JoinHandle<()>) {
    let done = Arc::new(Done::default());
    let clerk = |me: &'static str, group: &'static str| {
        let (engine, done, will_update) = (engine.clone(), done.clone(), will_update.clone());
        async move {
            let list = TaskQuery {
                candidate_groups: vec![group.into()],
                unassigned: true,
                limit: 50,
                ..TaskQuery::default()
            };
            loop {
                if let Ok(page) = engine.tasks(&list).await {
                    for t in &page.tasks {
                        let i = index(&t.business_key);
                        if group == "sales" {
                            if take(&engine, me, t, json!({"approved": true})).await {
                                done.reviews.fetch_add(1, Ordering::Relaxed);
                            }
                            continue;
                        }
                        if group == "customer_service" && i % 2 == 1 {
                            continue; // busy: left for the escalation
                        }
                        if !take(&engine, me, t, json!({"reached": true})).await {
                            continue;
                        }
                        let counter = if group == "supervisors" {
                            &done.escalated_calls
                        } else {
                            &done.calls
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        if will_update(i) {
                            let id = format!("call:{}", t.task_id);
                            let update =
                                Message::new("CreditCardUpdated", t.business_key.clone(), id)
                                    .payload(json!({ "cardUpdated": true }));
                            let _ = engine.send(update).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let all = [
        tokio::spawn(clerk("ann", "sales")),
        tokio::spawn(clerk("carl", "customer_service")),
        tokio::spawn(clerk("sue", "supervisors")),
    ];
    let handle = tokio::spawn(async move {
        let _stop = AbortAll(all);
        std::future::pending::<()>().await
    });
    (done, handle)
}

/// Aborts the clerks when the task that holds it is aborted (and so dropped).
struct AbortAll([tokio::task::JoinHandle<()>; 3]);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}
