//! `longrun tasks` and `longrun task ...`: the task list and what people do with tasks.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use longrun::machine::TaskAction;
use longrun::store::TaskQuery;

use crate::args::*;
use crate::util::*;

fn time(what: &str, text: &str) -> Result<DateTime<Utc>, Failure> {
    if text == "now" {
        return Ok(Utc::now());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Failure::Input(format!("{what} is not an RFC 3339 time: {e}")))
}

/// A date to set, or `none` to clear it.
fn date_change(
    what: &str,
    text: &Option<String>,
) -> Result<Option<Option<DateTime<Utc>>>, Failure> {
    match text.as_deref() {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(t) => Ok(Some(Some(time(what, t)?))),
    }
}

fn task_id(text: &str) -> Result<Uuid, Failure> {
    text.trim()
        .parse()
        .map_err(|_| Failure::Input(format!("\"{text}\" is not a task id (a UUID)")))
}

/// Who acts: `--user`, else the operating system's user.
fn who(user: &Option<String>) -> Result<String, Failure> {
    match user {
        Some(u) => Ok(u.clone()),
        None => std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Failure::Input("say who acts with --user (USER is not set)".into())),
    }
}

/// Run one of this file's commands (main dispatches by command).
pub(crate) async fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Tasks {
            assignee,
            user,
            groups,
            process,
            due_before,
            unassigned,
            limit,
            after,
        } => {
            let query = TaskQuery {
                assignee: assignee.clone(),
                candidate_user: user.clone(),
                candidate_groups: groups.clone(),
                process: process.clone(),
                due_before: due_before
                    .as_deref()
                    .map(|t| time("--due-before", t))
                    .transpose()?,
                unassigned: *unassigned,
                limit: *limit,
                after: after.clone(),
                ..TaskQuery::default()
            };
            if *limit == 0 {
                return Err(Failure::Input("--limit is 1 to 500".into()));
            }
            let engine = connect(cli).await?;
            let page = engine.tasks(&query).await?;
            if cli.json {
                print_json(&page);
                return Ok(());
            }
            let now = Utc::now();
            let rows: Vec<serde_json::Value> = page
                .tasks
                .iter()
                .map(|t| {
                    let mut offered: Vec<String> = t.candidate_groups.clone();
                    offered.extend(t.candidate_users.iter().map(|u| format!("user:{u}")));
                    json!({
                        "task": t.task_id,
                        "process": t.process,
                        "step": t.step,
                        "key": t.business_key,
                        "assignee": t.assignee,
                        "offered_to": offered.join(","),
                        "priority": t.priority,
                        "due": t.due_at.map(|d| {
                            let mark = if d < now { " (overdue)" } else { "" };
                            format!("{}{mark}", ts(d))
                        }),
                        "created": ts(t.created_at),
                    })
                })
                .collect();
            print_rows(
                &[
                    "task",
                    "process",
                    "step",
                    "key",
                    "assignee",
                    "offered_to",
                    "priority",
                    "due",
                    "created",
                ],
                &rows,
            );
            if let Some(next) = &page.next {
                println!("more: --after {next}");
            }
            Ok(())
        }
        Command::Task { action } => task(cli, action).await,
        _ => unreachable!("main dispatches only task commands here"),
    }
}

async fn task(cli: &Cli, action: &TaskCommand) -> Result<(), Failure> {
    let engine = connect(cli).await?;
    let (id, act, by, done) = match action {
        TaskCommand::Show { task } => {
            let id = task_id(task)?;
            let Some(detail) = engine.task(id).await? else {
                return Err(Failure::Input(format!(
                    "task {id} is not open: it was completed, or its step or instance ended"
                )));
            };
            if cli.json {
                print_json(&detail);
            } else {
                let t = &detail.task;
                println!(
                    "task {} ({} v{} step {})",
                    t.task_id, t.process, detail.version, t.step
                );
                println!("instance {} key {}", t.instance_id, t.business_key);
                println!("assignee {}", t.assignee.as_deref().unwrap_or("(none)"));
                println!("candidate groups {}", t.candidate_groups.join(", "));
                println!("candidate users {}", t.candidate_users.join(", "));
                println!("priority {}", t.priority);
                if let Some(d) = t.due_at {
                    println!("due {}", ts(d));
                }
                if let Some(d) = t.follow_up_at {
                    println!("follow-up {}", ts(d));
                }
                if let Some(f) = &t.form {
                    println!("form {f}");
                }
                let fields: Vec<String> = detail
                    .fields
                    .iter()
                    .map(|(k, v)| format!("{k} ({v})"))
                    .collect();
                println!(
                    "completion needs {}",
                    if fields.is_empty() {
                        "any variables".to_string()
                    } else {
                        fields.join(", ")
                    }
                );
                println!(
                    "variables {}",
                    serde_json::to_string(&detail.variables).expect("serializes")
                );
            }
            return Ok(());
        }
        TaskCommand::Claim { task, user, force } => (
            task_id(task)?,
            TaskAction::Claim { force: *force },
            who(user)?,
            "claimed",
        ),
        TaskCommand::Unclaim { task, user, force } => (
            task_id(task)?,
            TaskAction::Unclaim { force: *force },
            who(user)?,
            "released",
        ),
        TaskCommand::Assign {
            task,
            to,
            groups,
            users,
            user,
            force,
        } => (
            task_id(task)?,
            TaskAction::Assign {
                assignee: to.clone(),
                candidate_users: (!users.is_empty()).then(|| users.clone()),
                candidate_groups: (!groups.is_empty()).then(|| groups.clone()),
                force: *force,
            },
            who(user)?,
            "assigned",
        ),
        TaskCommand::Update {
            task,
            due,
            follow_up,
            priority,
            user,
        } => (
            task_id(task)?,
            TaskAction::Update {
                due_at: date_change("--due", due)?,
                follow_up_at: date_change("--follow-up", follow_up)?,
                priority: *priority,
            },
            who(user)?,
            "updated",
        ),
        TaskCommand::Complete {
            task,
            vars,
            user,
            force,
        } => {
            let variables = match parse_json("--vars", vars)? {
                serde_json::Value::Object(m) => m,
                other => {
                    return Err(Failure::Input(format!(
                        "--vars must be a JSON object, not {other}"
                    )))
                }
            };
            (
                task_id(task)?,
                TaskAction::Complete {
                    variables,
                    force: *force,
                },
                who(user)?,
                "completed",
            )
        }
    };
    engine.act_on_task(id, act, &by).await?;
    let after = engine.task(id).await?;
    if cli.json {
        print_json(&json!({"task_id": id, "done": done, "by": by, "task": after}));
    } else {
        match after.and_then(|d| d.task.assignee) {
            Some(a) => println!("{done} task {id} (held by {a})"),
            None => println!("{done} task {id}"),
        }
    }
    Ok(())
}
