//! The `pbx` command line.
//!
//! ```text
//! pbx [run] [--data DIR]                          start the PBX (default data folder: ./data)
//! pbx plugins check FILE.wasm [--config F.json]   validate a plugin offline
//! pbx plugins list [--data DIR]                   show the running PBX's plugins
//! pbx ext add DOMAIN EXT [--password P] [--name N] [--data DIR]
//! pbx ext list [DOMAIN] [--data DIR]
//! pbx ext passwd DOMAIN EXT [--password P] [--data DIR]
//! pbx ext reset-provisioned DOMAIN EXT [--data DIR]
//! ```

use anyhow::{Context, bail};
use pbx::config::Config;
use pbx::plugins::{Limits, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  pbx [run] [--data DIR]                          start the PBX (data folder default: ./data)
  pbx plugins check FILE.wasm [--config F.json]   validate a plugin offline (exit 0 = accepted)
  pbx plugins list [--data DIR]                   show each hook's plugin in the running PBX
  pbx ext add DOMAIN EXT [--password P] [--name N] [--data DIR]
                                                  add an extension (a random password is printed if none given)
  pbx ext list [DOMAIN] [--data DIR]              list extensions (no passwords)
  pbx ext passwd DOMAIN EXT [--password P] [--data DIR]
  pbx ext reset-provisioned DOMAIN EXT [--data DIR]
                                                  let the \"once\" policy provision the password again";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PBX_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pbx: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pbx: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(args: Vec<String>) -> anyhow::Result<ExitCode> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["-h" | "--help" | "help", ..] => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        ["plugins", "check", rest @ ..] => plugins_check(rest).await,
        ["plugins", "list", rest @ ..] => {
            let data = data_dir(rest)?;
            let reply = pbx::admin::request(&data, "plugins list")
                .await
                .with_context(|| format!("no PBX answering on {}", pbx::admin::socket_path(&data).display()))?;
            println!("{reply}");
            Ok(ExitCode::SUCCESS)
        }
        ["ext", rest @ ..] => ext(rest),
        ["run", rest @ ..] => run(rest).await,
        rest if rest.is_empty() || rest[0].starts_with("--") => run(rest).await,
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn run(args: &[&str]) -> anyhow::Result<ExitCode> {
    let data = data_dir(args)?;
    let config = Config::load_or_init(&data).map_err(anyhow::Error::msg)?;
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    pbx::app::run(config, ctrl_c).await?;
    Ok(ExitCode::SUCCESS)
}

async fn plugins_check(args: &[&str]) -> anyhow::Result<ExitCode> {
    let (file, config) = match args {
        [file] => (*file, None),
        [file, "--config", cfg] => (*file, Some(*cfg)),
        _ => bail!("{USAGE}"),
    };
    let wasm = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let config = match config {
        Some(c) => std::fs::read_to_string(c).with_context(|| format!("reading {c}"))?,
        None => "{}".to_string(),
    };
    let runtime = Runtime::new(Limits::default())?;
    match pbx::plugins::check_file(&runtime, wasm, config).await {
        Ok(p) => {
            let hooks: Vec<&str> = p.info.hooks.iter().map(|h| h.name()).collect();
            println!(
                "OK: {} {} serves [{}] (pbx:policy@{}, sha256 {}, {} bytes)",
                p.info.name,
                p.info.version,
                hooks.join(", "),
                p.contract_version(),
                p.sha256,
                p.size
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("REFUSED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Split `args` into positional words and `--flag value` pairs.
fn split_flags<'a>(args: &[&'a str]) -> anyhow::Result<(Vec<&'a str>, std::collections::HashMap<&'a str, &'a str>)> {
    let mut words = Vec::new();
    let mut flags = std::collections::HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix("--") {
            let Some(v) = it.next() else {
                bail!("--{flag} needs a value\n{USAGE}")
            };
            flags.insert(flag, *v);
        } else {
            words.push(*a);
        }
    }
    Ok((words, flags))
}

fn ext(args: &[&str]) -> anyhow::Result<ExitCode> {
    use pbx::store::{Extension, SqliteStore, Store};
    let (words, flags) = split_flags(args)?;
    let data = PathBuf::from(flags.get("data").copied().unwrap_or("data"));
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let store = SqliteStore::open(&data.join("pbx.db")).context("opening the database")?;
    match words.as_slice() {
        ["add", domain, ext] => {
            let password = flags
                .get("password")
                .map_or_else(pbx::store::random_password, |p| p.to_string());
            store.add_extension(&Extension {
                domain: domain.to_string(),
                extension: ext.to_string(),
                password: password.clone(),
                display_name: flags.get("name").map(|n| n.to_string()),
                provisioned: false,
            })?;
            if flags.contains_key("password") {
                println!("added sip:{ext}@{domain}");
            } else {
                println!("added sip:{ext}@{domain}  password: {password}");
            }
        }
        ["list", rest @ ..] => {
            for e in store.extensions(rest.first().copied())? {
                let name = e.display_name.as_deref().unwrap_or("");
                let provisioned = if e.provisioned { "provisioned" } else { "" };
                println!("{}@{}\t{name}\t{provisioned}", e.extension, e.domain);
            }
        }
        ["passwd", domain, ext] => {
            let password = flags
                .get("password")
                .map_or_else(pbx::store::random_password, |p| p.to_string());
            store.set_password(domain, ext, &password)?;
            if flags.contains_key("password") {
                println!("password of sip:{ext}@{domain} changed");
            } else {
                println!("sip:{ext}@{domain}  new password: {password}");
            }
        }
        ["reset-provisioned", domain, ext] => {
            store.set_provisioned(domain, ext, false)?;
            println!("sip:{ext}@{domain} will be provisioned with its password again (policy \"once\")");
        }
        _ => {
            eprintln!("{USAGE}");
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn data_dir(args: &[&str]) -> anyhow::Result<PathBuf> {
    match args {
        [] => Ok(PathBuf::from("data")),
        ["--data", dir] => Ok(PathBuf::from(dir)),
        _ => bail!("{USAGE}"),
    }
}
