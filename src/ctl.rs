//! `weir ctl ...`: managing a running node through its API, as `emqx ctl` does.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  weir ctl -c weir.toml users add alice 's3cret' --superuser\n  weir ctl -c weir.toml users list\n  weir ctl --api http://10.0.0.5:18083 --key ops:secret users delete alice"
)]
pub struct Ctl {
    /// The node's weir.toml: the API's address ([api] bind) and key ([api] bootstrap_key) come
    /// from it, WEIR_* overrides included.
    #[arg(short, long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    /// The API's base URL, instead of the config's [api] bind.
    #[arg(long)]
    api: Option<String>,
    /// An API key as key:secret, instead of the config's [api] bootstrap_key.
    #[arg(long, env = "WEIR_API_KEY")]
    key: Option<String>,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Subcommand)]
enum CtlCommand {
    /// The users of the built-in database ([[authentication]] backend = "built_in_database").
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user; its password is hashed with the authenticator's password_hash_algorithm.
    Add {
        /// The user id: a username, or a client id with user_id_type = "clientid".
        user_id: String,
        /// The password.
        password: String,
        /// Let the user pass every authorization check.
        #[arg(long)]
        superuser: bool,
    },
    /// Delete a user.
    Delete {
        /// The user id.
        user_id: String,
    },
    /// List the users, one per line, with `superuser` after those who are.
    List,
}

pub async fn run(ctl: Ctl) -> anyhow::Result<ExitCode> {
    let config = weir_hub::Config::load(ctl.config.as_deref())?;
    let base = match ctl.api {
        Some(api) => api.trim_end_matches('/').to_string(),
        None => {
            let mut bind = config.api.bind;
            if bind.ip().is_unspecified() {
                bind.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{bind}")
        }
    };
    let key = ctl
        .key
        .or(config.api.bootstrap_key)
        .context("no API key: give --key key:secret (or WEIR_API_KEY), or set [api] bootstrap_key in the config")?;
    let (user, secret) = key.split_once(':').context("--key must be key:secret")?;
    let users = format!("{base}/api/v5/authentication/password_based:built_in_database/users");
    // reqwest's TLS is rustls, whose crypto provider is ring's (aws-lc needs cmake to build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let request = match &ctl.command {
        CtlCommand::Users(UsersCommand::Add { user_id, password, superuser }) => {
            client.post(&users).json(&json!({ "user_id": user_id, "password": password, "is_superuser": superuser }))
        }
        CtlCommand::Users(UsersCommand::Delete { user_id }) => {
            let mut url = reqwest::Url::parse(&users).context("the API's URL")?;
            url.path_segments_mut().map_err(|()| anyhow::anyhow!("the API's URL cannot take a path"))?.push(user_id);
            client.delete(url)
        }
        CtlCommand::Users(UsersCommand::List) => client.get(&users),
    };
    let response = request
        .basic_auth(user, Some(secret))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("cannot reach the API at {base}: is the node running, with [api] enabled?"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
        eprintln!("weir ctl: {status}: {message}");
        return Ok(ExitCode::FAILURE);
    }
    match ctl.command {
        CtlCommand::Users(UsersCommand::Add { user_id, .. }) => println!("added {user_id}"),
        CtlCommand::Users(UsersCommand::Delete { user_id }) => println!("deleted {user_id}"),
        CtlCommand::Users(UsersCommand::List) => {
            for u in body.get("data").and_then(Value::as_array).into_iter().flatten() {
                let id = u.get("user_id").and_then(Value::as_str).unwrap_or_default();
                let su = if u.get("is_superuser") == Some(&Value::Bool(true)) { " superuser" } else { "" };
                println!("{id}{su}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
