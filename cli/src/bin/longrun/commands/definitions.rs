//! Definitions: migrate the schema, deploy, tag, list, export, diff, migrate instances between versions.

use serde_json::{json, Value};

use longrun::ProcessDefinition;

use crate::args::*;
use crate::util::*;

/// Run one of this file's commands (main dispatches by command).
pub(crate) async fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Migrate {
            print: true,
            from,
            layout,
            ..
        } => {
            let roles = longrun::store::Roles::default();
            print!(
                "{}",
                longrun::store::migration_script(&cli.schema, &roles, layout.parse()?, *from)?
            );
            Ok(())
        }
        Command::Migrate {
            out: Some(dir),
            format,
            layout,
            ..
        } => {
            let format = match format.as_str() {
                "flyway" => longrun::store::FileFormat::Flyway,
                _ => longrun::store::FileFormat::Plain,
            };
            let roles = longrun::store::Roles::default();
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Other(format!("{}: {e}", dir.display())))?;
            for (name, text) in
                longrun::store::migration_files(&cli.schema, &roles, layout.parse()?, format)
            {
                let path = dir.join(&name);
                std::fs::write(&path, text)
                    .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
                if !cli.json {
                    println!("{}", path.display());
                }
            }
            Ok(())
        }
        Command::Migrate { layout, .. } => {
            let engine = connect_layout(cli, 2, layout.parse()?).await?;
            let applied = engine.store().migrate().await?;
            if cli.json {
                print_json(&json!({ "schema": cli.schema, "applied": applied }));
            } else if applied.is_empty() {
                println!("schema \"{}\" is up to date", cli.schema);
            } else {
                for v in applied {
                    println!("applied migration {v:04} to schema \"{}\"", cli.schema);
                }
            }
            Ok(())
        }
        Command::Convert { file, format, to } => {
            let text = read_document(file)?;
            let format = format.clone().unwrap_or_else(|| format_of(file));
            let def = match format.as_str() {
                "json" => ProcessDefinition::from_json(&text)
                    .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?,
                "bpmn" => longrun::bpmn::import(&text).map_err(|e| bpmn_problems(file, &e))?,
                other => {
                    return Err(Failure::Input(format!(
                        "--format {other}: expected bpmn or json"
                    )))
                }
            };
            let to = to
                .clone()
                .unwrap_or_else(|| if format == "json" { "bpmn" } else { "json" }.to_string());
            match to.as_str() {
                "json" => println!("{}", def.to_json()),
                "bpmn" => print!("{}", longrun::bpmn::export(&def).xml),
                other => {
                    return Err(Failure::Input(format!(
                        "--to {other}: expected bpmn or json"
                    )))
                }
            }
            Ok(())
        }
        Command::Deploy { file, tag, format } => {
            let text = read_document(file)?;
            let format = format.clone().unwrap_or_else(|| format_of(file));
            let def = match format.as_str() {
                "json" => ProcessDefinition::from_json(&text)
                    .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?,
                "bpmn" => {
                    // Every problem in the file, one line each, named like a compiler's.
                    longrun::bpmn::import(&text).map_err(|e| bpmn_problems(file, &e))?;
                    let engine = connect(cli).await?;
                    let d = engine.store().deploy_bpmn(&text, engine.now()).await?;
                    if cli.json {
                        print_json(&d);
                    } else {
                        println!(
                            "deployed {} version {}{}",
                            d.process,
                            d.version,
                            if d.created { "" } else { " (unchanged)" }
                        );
                    }
                    if let Some(tag) = tag {
                        engine
                            .store()
                            .tag(&d.process, tag, d.version, engine.now())
                            .await?;
                    }
                    return Ok(());
                }
                other => {
                    return Err(Failure::Input(format!(
                        "--format {other}: expected json or bpmn"
                    )))
                }
            };
            let engine = connect(cli).await?;
            let d = engine.deploy(&def).await?;

            if cli.json {
                print_json(&d);
            } else if d.created {
                println!("deployed {} version {}", d.process, d.version);
            } else {
                println!(
                    "{} version {} is already deployed with this document",
                    d.process, d.version
                );
            }
            if let Some(tag) = tag {
                engine
                    .store()
                    .tag(&d.process, tag, d.version, engine.now())
                    .await?;
                if !cli.json {
                    println!("tagged {} version {} as {tag}", d.process, d.version);
                }
            }
            Ok(())
        }
        Command::Tag {
            process,
            tag,
            version,
        } => {
            let engine = connect(cli).await?;
            engine
                .store()
                .tag(process, tag, *version, engine.now())
                .await?;
            println!("{process} {tag} -> version {version}");
            Ok(())
        }
        Command::Definitions => {
            let engine = connect(cli).await?;
            let defs = engine.store().definitions().await?;
            if cli.json {
                print_json(&defs);
            } else {
                let cols = [
                    "process",
                    "version",
                    "running",
                    "completed",
                    "failed",
                    "cancelled",
                    "tags",
                    "start_message",
                    "deployed_at",
                ];
                print_rows(&cols, &defs);
            }
            Ok(())
        }
        Command::Export {
            process,
            version,
            format,
        } => {
            if !matches!(format.as_str(), "bpmn" | "json") {
                return Err(Failure::Input(format!(
                    "--format {format}: expected bpmn or json"
                )));
            }
            let engine = connect(cli).await?;
            let version = match version {
                Some(v) => *v,
                None => engine
                    .store()
                    .definitions()
                    .await?
                    .iter()
                    .filter(|d| d.process == *process)
                    .map(|d| d.version)
                    .max()
                    .ok_or_else(|| {
                        Failure::Input(format!("no process \"{process}\" is deployed"))
                    })?,
            };
            let def = engine.store().definition(process, version).await?;
            if format == "json" {
                println!("{}", def.to_json());
            } else if let Some(source) = engine.store().definition_source(process, version).await? {
                // Deployed from BPMN: the document as it was, its layout kept.
                print!("{source}");
            } else {
                print!("{}", longrun::bpmn::export(&def).xml);
            }
            Ok(())
        }
        Command::Diff { process, from, to } => {
            let engine = connect(cli).await?;
            let old = engine.store().definition(process, *from).await?;
            let new = engine.store().definition(process, *to).await?;
            let d = longrun::definition::diff(&old, &new);
            if cli.json {
                print_json(&d);
                return Ok(());
            }
            if d.is_empty() {
                println!("{process} v{from} and v{to} are the same model");
            }
            for line in &d.process {
                println!("~ process {line}");
            }
            for s in &d.added {
                println!("+ step {s}");
            }
            for s in &d.removed {
                println!("- step {s}");
            }
            for (s, lines) in &d.changed {
                println!("~ step {s}");
                for l in lines {
                    println!("    {l}");
                }
            }
            Ok(())
        }
        Command::MigrateInstances {
            process,
            from,
            to,
            map,
            set,
            dry_run,
        } => {
            let mut plan = longrun::machine::MigrationPlan::default();
            for m in map {
                let Some((a, b)) = m.split_once('=') else {
                    return Err(Failure::Input(format!("--map {m}: expected OLD=NEW")));
                };
                plan.mapping
                    .insert(a.trim().to_string(), b.trim().to_string());
            }
            if let Some(s) = set {
                match parse_json("--set", s)? {
                    Value::Object(m) => plan.set = m,
                    _ => return Err(Failure::Input("--set must be a JSON object".into())),
                }
            }
            let engine = connect(cli).await?;
            let by = format!(
                "longrun migrate-instances (user {})",
                std::env::var("USER").unwrap_or_default()
            );
            let report = engine
                .store()
                .migrate_instances(
                    process,
                    *from,
                    *to,
                    &plan,
                    *dry_run,
                    engine.now(),
                    &by,
                    |n| {
                        eprintln!("{n} instances looked at");
                    },
                )
                .await?;
            if cli.json {
                print_json(&report);
                return Ok(());
            }
            let verb = if *dry_run { "can move" } else { "moved" };
            println!(
                "{process} v{from} -> v{to}: {} {verb}, {} cannot{}",
                report.moved.len(),
                report.refused.len(),
                if *dry_run {
                    " (dry run: nothing written)"
                } else {
                    ""
                }
            );
            for id in &report.moved {
                println!("  {verb}: {id}");
            }
            for r in &report.refused {
                println!("  cannot: {}: {}", r.instance_id, r.reason);
            }
            Ok(())
        }
        _ => unreachable!("main dispatches only this file's commands here"),
    }
}

/// A definition file's format by its extension: `bpmn` for `.bpmn` and `.xml`, else `json`.
fn format_of(file: &std::path::Path) -> String {
    match file.extension().and_then(|e| e.to_str()) {
        Some("bpmn") | Some("xml") => "bpmn".into(),
        _ => "json".into(),
    }
}

/// Every problem in a BPMN file, one line each, named like a compiler's (`file:line:col: ..`).
fn bpmn_problems(file: &std::path::Path, e: &impl std::fmt::Display) -> Failure {
    Failure::Input(
        e.to_string()
            .lines()
            .map(|l| format!("{}:{l}", file.display()))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
