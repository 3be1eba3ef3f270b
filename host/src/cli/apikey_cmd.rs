//! `posbridge apikey create|list|revoke`: the keys of the HTTP API. A key is shown once, at
//! creation; the state database keeps only its hash.

use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use super::output::table;
use crate::serve::api_key::Role;
use crate::serve::db::ServeDb;

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Make a key and print it alone on stdout (it is not shown again).
    #[command(group(ArgGroup::new("scope").required(true).args(["admin", "store"])))]
    Create {
        /// A key that manages stores and pipelines and sees every store.
        #[arg(long)]
        admin: bool,
        /// A key that sees this store only (the store must exist).
        #[arg(long, value_name = "ID")]
        store: Option<String>,
        #[command(flatten)]
        state: StateArg,
        /// Print JSON: key, id, role, store, created.
        #[arg(long)]
        json: bool,
    },
    /// The keys (ids, roles, stores, dates; never the secrets).
    List {
        #[command(flatten)]
        state: StateArg,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id (or `pbk_<id>`): requests with it get 401 from then on.
    Revoke {
        id: String,
        #[command(flatten)]
        state: StateArg,
    },
}

#[derive(Debug, Args)]
pub struct StateArg {
    /// State store (default `sqlite:posbridge.db`).
    #[arg(long, value_name = "SPEC", env = "POSBRIDGE_STATE")]
    pub state: Option<String>,
}

/// Dispatches `posbridge apikey …`.
pub fn run(c: &ApikeyCommand) -> anyhow::Result<i32> {
    match c {
        ApikeyCommand::Create {
            admin,
            store,
            state,
            json,
        } => {
            let db = ServeDb::open(state.state.as_deref())?;
            let role = if *admin { Role::Admin } else { Role::Store };
            let (key, info) = db.create_key(role, store.as_deref())?;
            if *json {
                let out = json!({
                    "key": key.full,
                    "id": info.id,
                    "role": info.role,
                    "store": info.store,
                    "created": info.created,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{}", key.full);
            }
            Ok(0)
        }
        ApikeyCommand::List { state, json } => {
            let db = ServeDb::open(state.state.as_deref())?;
            let keys = db.keys()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.role.as_str().to_string(),
                        k.store.clone().unwrap_or_default(),
                        k.created.clone(),
                        k.revoked.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["ID", "ROLE", "STORE", "CREATED", "REVOKED"], &rows)
            );
            Ok(0)
        }
        ApikeyCommand::Revoke { id, state } => {
            let db = ServeDb::open(state.state.as_deref())?;
            db.revoke_key(id)?;
            eprintln!("revoked {id}");
            Ok(0)
        }
    }
}
