//! `lectern-server`: the school's Lectern server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use lectern_server::init::{init, InitOptions};
use lectern_server::{config::DB_FILE, tls::pretty_fingerprint, Server};
use lectern_store::{now_ms, Role, SqliteStore, Store};

/// The Lectern server: teacher console, REST API and agent gateway on one HTTPS port.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

const DEFAULT_DATA: &str = "/var/lib/lectern-server";

#[derive(Subcommand)]
enum Cmd {
    /// Create a data directory: database, school, first admin, TLS certificate, server.toml.
    Init {
        /// Data directory to create.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// The school's name, shown in the console and on lock screens.
        #[arg(long)]
        school: String,
        /// User name of the first console administrator.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// The administrator's password (at least 8 characters); generated and printed once when omitted.
        #[arg(long, env = "LECTERN_ADMIN_PASSWORD", allow_hyphen_values = true)]
        password: Option<String>,
        /// Use this PEM certificate (chain) instead of generating one; needs --key.
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        /// PEM private key for --cert.
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// Extra DNS name or IP address for the generated certificate (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Address to listen on, written to server.toml.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Keep the store in PostgreSQL instead of the data directory's SQLite
        /// file, for a cluster of nodes: libpq parameters such as
        /// "host=db1 user=lectern dbname=lectern" (written to server.toml's
        /// [cluster]).
        #[arg(long, env = "LECTERN_POSTGRES", hide_env_values = true)]
        postgres: Option<String>,
    },
    /// Serve the console, the API and agents until stopped (SIGINT/SIGTERM).
    Serve {
        /// Data directory made by `init`.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// Address to listen on; overrides server.toml (default 0.0.0.0:30016).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run a server with a simulated classroom: the quickest way to see Lectern.
    Demo {
        /// Data directory to use or create; a fresh temporary one when omitted.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:30016")]
        listen: SocketAddr,
        /// Number of simulated student computers.
        #[arg(long, default_value_t = 30)]
        agents: usize,
        /// Admin password for a new demo data directory (generated when omitted).
        #[arg(long, allow_hyphen_values = true)]
        password: Option<String>,
    },
    /// Manage enrollment tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Add a console user.
    UserAdd {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// User name.
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "LECTERN_USER_PASSWORD", allow_hyphen_values = true)]
        password: String,
        /// `admin` or `teacher`.
        #[arg(long, default_value = "teacher")]
        role: String,
        /// The school (id, from `school list`); the first school when omitted.
        #[arg(long)]
        school: Option<i64>,
    },
    /// Print the certificate fingerprint agents must pin.
    Fingerprint {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
    },
    /// Write a consistent snapshot of the database (safe while the server runs).
    Backup {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// Output file (must not exist); default `backups/lectern-<time>.db`
        /// (with `--school`, `exports/school-<id>-<time>.db`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only this school's rows (its id, from `school list`): the copy a
        /// school of a shared server takes away. Without it, the whole
        /// database.
        #[arg(long)]
        school: Option<i64>,
    },
    /// Replace the database with a backup, or one school's rows with that
    /// school's copy (stop the server first). The current database is kept
    /// as `backups/pre-restore-<time>.db`.
    Restore {
        /// The backup file, or with `--school` a school's own copy.
        file: PathBuf,
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// The file is one school's copy (`backup --school`): put that
        /// school's rows back as they were in it, leaving the server's other
        /// schools as they are. Refused, with nothing changed, when another
        /// school's rows have taken its ids since (restore it as a server of
        /// its own instead).
        #[arg(long, conflicts_with = "whole")]
        school: bool,
        /// Replace the whole database even though it holds schools the
        /// backup does not (they are lost, but for the copy kept aside).
        #[arg(long)]
        whole: bool,
    },
    /// Keyword detection tools.
    Keywords {
        #[command(subcommand)]
        cmd: KeywordsCmd,
    },
    /// Schools this server hosts: list them, add one.
    School {
        #[command(subcommand)]
        cmd: SchoolCmd,
    },
    /// Trust-level administrators: let a user of one school act in others.
    Trust {
        #[command(subcommand)]
        cmd: TrustCmd,
    },
}

#[derive(Subcommand)]
enum SchoolCmd {
    /// List the schools (id, name, school code).
    List {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
    },
    /// Add a school with its first administrator and a school code for
    /// registering devices; a running server serves it from its first
    /// sign-in.
    Add {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// The school's name, shown in the console and on lock screens.
        #[arg(long)]
        name: String,
        /// User name of its first console administrator.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// The administrator's password (at least 8 characters); generated and printed once when omitted.
        #[arg(long, env = "LECTERN_ADMIN_PASSWORD", allow_hyphen_values = true)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum TrustCmd {
    /// Let a user act in another school (they switch to it in the console).
    Grant {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// The user's own school (id, from `school list`).
        #[arg(long)]
        home: i64,
        /// The user's name in their own school.
        #[arg(long)]
        username: String,
        /// The school they may act in (id).
        #[arg(long)]
        school: i64,
        /// Their role there: `admin` or `teacher`.
        #[arg(long, default_value = "admin")]
        role: String,
    },
    /// Take a grant back; the user's sessions in that school end.
    Revoke {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// The user's own school (id).
        #[arg(long)]
        home: i64,
        /// The user's name in their own school.
        #[arg(long)]
        username: String,
        /// The school (id).
        #[arg(long)]
        school: i64,
    },
}

#[derive(Subcommand)]
enum KeywordsCmd {
    /// Scan text from stdin; print one JSON object per match (term, category,
    /// severity, matched text, byte span; `line` counts from 1).
    Scan {
        /// Library as CSV (term,category,severity,match,exceptions) or JSON;
        /// default: the built-in library.
        #[arg(long)]
        library: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create an enrollment token and print it (shown only once).
    Create {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data_dir: PathBuf,
        /// How many devices may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: i64,
        /// Hours until it expires.
        #[arg(long, default_value_t = 24)]
        hours: i64,
        /// A note for admins, e.g. the room it is for.
        #[arg(long, default_value = "")]
        label: String,
        /// The school (id, from `school list`); the first school when omitted.
        #[arg(long)]
        school: Option<i64>,
    },
}

fn open_store(
    data_dir: &std::path::Path,
) -> anyhow::Result<(Arc<dyn Store>, lectern_store::School)> {
    open_school(data_dir, None)
}

/// The store (SQLite, or the cluster's PostgreSQL) and the school named by
/// `--school` (the first when `None`).
fn open_school(
    data_dir: &std::path::Path,
    school: Option<i64>,
) -> anyhow::Result<(Arc<dyn Store>, lectern_store::School)> {
    let store = lectern_server::engine::open_dir(data_dir)?;
    let found = match school {
        None => store.first_school()?.ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not initialized; run `lectern-server init`",
                data_dir.display()
            )
        })?,
        Some(id) => store
            .school(id)?
            .ok_or_else(|| anyhow::anyhow!("no school {id}; see `lectern-server school list`"))?,
    };
    Ok((store, found))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// `serve` and `demo` run on a tokio runtime; every other command works on
/// files and the store from this thread, blocking, with no runtime: the
/// PostgreSQL client runs its own, which cannot be started inside another.
fn main() -> anyhow::Result<()> {
    init_logging();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match Cli::parse().cmd {
        Cmd::Init {
            data_dir,
            school,
            admin,
            password,
            cert,
            key,
            names,
            listen,
            postgres,
        } => {
            let report = init(&InitOptions {
                data_dir: data_dir.clone(),
                school,
                admin: admin.clone(),
                password,
                cert: cert.zip(key),
                names,
                listen,
                postgres,
            })?;
            println!("Initialized {}", data_dir.display());
            println!("Admin user: {admin}");
            if let Some(p) = report.generated_password {
                println!("Admin password: {p}   (shown once; store it safely)");
            }
            println!(
                "Certificate SHA-256 fingerprint (agents pin this): {}",
                report.fingerprint
            );
            println!(
                "                                                  {}",
                pretty_fingerprint(&report.fingerprint)
            );
        }
        Cmd::Serve { data_dir, listen } => runtime()?.block_on(async {
            let server = Server::start(&data_dir, listen).await?;
            println!(
                "Serving {} on https://{}/ (fingerprint {})",
                server.label, server.addr, server.fingerprint
            );
            shutdown_signal().await;
            tracing::info!("stopping");
            server.stop().await;
            anyhow::Ok(())
        })?,
        Cmd::Demo {
            data_dir,
            listen,
            agents,
            password,
        } => runtime()?.block_on(lectern_server::demo::run(
            lectern_server::demo::DemoOptions {
                data_dir,
                listen,
                agents,
                password,
            },
        ))?,
        Cmd::Token {
            cmd:
                TokenCmd::Create {
                    data_dir,
                    uses,
                    hours,
                    label,
                    school,
                },
        } => {
            anyhow::ensure!(
                (1..=100_000).contains(&uses),
                "--uses must be between 1 and 100000"
            );
            anyhow::ensure!(
                (1..=24 * 366).contains(&hours),
                "--hours must be between 1 and 8784"
            );
            let (store, school) = open_school(&data_dir, school)?;
            let (token, rec) = store.create_enrollment_token(
                school.id,
                &label,
                uses,
                now_ms() + hours * 3_600_000,
                "cli",
            )?;
            store.audit(&lectern_store::NewAudit {
                school_id: school.id,
                actor: "cli".into(),
                address: None,
                action: "enrollment_token.create".into(),
                detail: format!("token {} ({label:?}), {uses} uses", rec.id),
                devices: vec![],
                command_id: None,
                outcome: "ok".into(),
            })?;
            println!("{token}");
        }
        Cmd::UserAdd {
            data_dir,
            username,
            password,
            role,
            school,
        } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be admin or teacher"))?;
            anyhow::ensure!(
                password.chars().count() >= 8,
                "the password must be at least 8 characters"
            );
            // Whoever runs this owns the data directory, so may make any
            // account; it is audited like the API's.
            let (store, school) = open_school(&data_dir, school)?;
            store.create_user(school.id, &username, &password, role)?;
            store.audit(&lectern_store::NewAudit {
                school_id: school.id,
                actor: "cli".into(),
                address: None,
                action: "user.create".into(),
                detail: format!("{username} ({})", role.as_str()),
                devices: vec![],
                command_id: None,
                outcome: "ok".into(),
            })?;
            println!("added {username} ({})", role.as_str());
        }
        Cmd::Backup {
            data_dir,
            out,
            school,
        } => {
            let (store, _) = open_store(&data_dir)?;
            let out = match out {
                Some(p) => {
                    lectern_server::maintenance::create_private(&p).map_err(|e| {
                        match e.kind() {
                            std::io::ErrorKind::AlreadyExists => {
                                anyhow::anyhow!("{} already exists", p.display())
                            }
                            _ => anyhow::anyhow!("cannot create {}: {e}", p.display()),
                        }
                    })?;
                    p
                }
                None => match school {
                    Some(id) => lectern_server::maintenance::new_backup_file(
                        &data_dir.join("exports"),
                        &format!("school-{id}"),
                    )?,
                    None => lectern_server::maintenance::new_backup_file(
                        &data_dir.join("backups"),
                        "lectern",
                    )?,
                },
            };
            match school {
                Some(id) => {
                    if store.school(id)?.is_none() {
                        let _ = std::fs::remove_file(&out);
                        anyhow::bail!("no school {id} (see `lectern-server school list`)");
                    }
                    // A failed export may hold the whole database: never
                    // leave it behind.
                    let summary = store.export_school(id, &out).inspect_err(|_| {
                        let _ = std::fs::remove_file(&out);
                    })?;
                    let rows: u64 = summary.rows.iter().map(|(_, n)| n).sum();
                    eprintln!("school {id}: {rows} rows in {} tables", summary.rows.len());
                }
                None => lectern_server::maintenance::write_backup(&*store, &out)?,
            }
            println!("{}", out.display());
        }
        Cmd::Restore {
            file,
            data_dir,
            school: true,
            ..
        } => restore_school(&file, &data_dir)?,
        Cmd::Restore {
            file,
            data_dir,
            whole,
            ..
        } => restore(&file, &data_dir, whole)?,
        Cmd::Keywords {
            cmd: KeywordsCmd::Scan { library },
        } => {
            let lib = match library {
                None => lectern_keywords::Library::default_library(),
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                    if p.extension().is_some_and(|e| e == "json") {
                        serde_json::from_str(&text)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                    } else {
                        lectern_keywords::Library::from_csv(&text)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                    }
                }
            };
            let scanner = lectern_keywords::Scanner::new(&lib)?;
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            lectern_keywords::scan_lines_to_json(stdin.lock(), stdout.lock(), &scanner)?;
        }
        Cmd::School { cmd } => school_cmd(cmd)?,
        Cmd::Trust { cmd } => trust_cmd(cmd)?,
        Cmd::Fingerprint { data_dir } => {
            let cfg = lectern_server::config::ServerConfig::load(&data_dir)?;
            let (_, fp) = lectern_server::tls::load(
                &lectern_server::config::ServerConfig::resolve(&data_dir, &cfg.cert),
                &lectern_server::config::ServerConfig::resolve(&data_dir, &cfg.key),
            )?;
            println!("{fp}");
        }
    }
    Ok(())
}

fn school_cmd(cmd: SchoolCmd) -> anyhow::Result<()> {
    match cmd {
        SchoolCmd::List { data_dir } => {
            let (store, _) = open_store(&data_dir)?;
            for s in store.schools()? {
                let code = store.school_codes().school_code(s.id)?.map_or_else(
                    || "-".to_string(),
                    |r| lectern_proto::schoolcode::display(&r.code),
                );
                println!("{}\t{}\t{}", s.id, code, s.name);
            }
        }
        SchoolCmd::Add {
            data_dir,
            name,
            admin,
            password,
        } => {
            let (store, _) = open_store(&data_dir)?;
            let made = lectern_server::tenants::add_school(&*store, &name, &admin, password)?;
            println!("Added school {} ({})", made.school.id, made.school.name);
            println!("School code: {}", made.code);
            println!("Admin user: {admin}");
            if let Some(p) = made.generated_password {
                println!("Admin password: {p}   (shown once; store it safely)");
            }
        }
    }
    Ok(())
}

fn trust_cmd(cmd: TrustCmd) -> anyhow::Result<()> {
    match cmd {
        TrustCmd::Grant {
            data_dir,
            home,
            username,
            school,
            role,
        } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be admin or teacher"))?;
            let (store, _) = open_school(&data_dir, Some(home))?;
            lectern_server::tenants::grant(&*store, home, &username, school, role)?;
            println!("{username} may act in school {school} as {}", role.as_str());
        }
        TrustCmd::Revoke {
            data_dir,
            home,
            username,
            school,
        } => {
            let (store, _) = open_school(&data_dir, Some(home))?;
            lectern_server::tenants::revoke(&*store, home, &username, school)?;
            println!("{username} may no longer act in school {school}");
        }
    }
    Ok(())
}

/// journald when systemd connected stderr to the journal (or
/// `LECTERN_LOG=journald`), stderr otherwise; `RUST_LOG` filters.
fn init_logging() {
    use tracing_subscriber::prelude::*;
    // The demo's simulated agents would drown the server's own lines at info.
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,lectern_agent=warn".into())
    };
    let journal = match std::env::var("LECTERN_LOG").as_deref() {
        Ok("journald") => true,
        Ok("stderr") => false,
        _ => std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    if journal {
        if let Ok(layer) = tracing_journald::layer() {
            tracing_subscriber::registry()
                .with(filter())
                .with(layer.with_syslog_identifier("lectern-server".into()))
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .init();
}

/// `restore`: checks the backup, refuses while the server is listening, keeps
/// the current database aside and puts the backup in its place. A database
/// holding schools the backup lacks (one school's copy restored over a
/// shared server by mistake) is replaced only when asked (`whole`).
fn restore(file: &std::path::Path, data_dir: &std::path::Path, whole: bool) -> anyhow::Result<()> {
    let school = lectern_store::verify_database(file)
        .map_err(|e| anyhow::anyhow!("{} is not a usable backup: {e}", file.display()))?;
    refuse_while_serving(data_dir)?;
    let db = data_dir.join(DB_FILE);
    if db.exists() && !whole {
        let held = lectern_store::schools_in(file)?;
        let lost: Vec<String> = SqliteStore::open(&db)?
            .schools()?
            .into_iter()
            .filter(|s| !held.contains(&s.id))
            .map(|s| format!("{} ({})", s.id, s.name))
            .collect();
        if !lost.is_empty() {
            anyhow::bail!(
                "the backup does not hold school {}, which this server does: restore one \
                 school's copy with --school, or replace everything with --whole",
                lost.join(", ")
            );
        }
    }
    keep_aside(data_dir)?;
    let tmp = data_dir.join("lectern.db.restoring");
    std::fs::copy(file, &tmp)?;
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data_dir.join(format!("{DB_FILE}{ext}")));
    }
    std::fs::rename(&tmp, &db)?;
    println!(
        "restored {} (school {school:?}); start the server again",
        file.display()
    );
    Ok(())
}

/// Refuses while a server listens on the configured address: it would go on
/// with what it read of the database before.
fn refuse_while_serving(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let cfg = lectern_server::config::ServerConfig::load(data_dir)?;
    // A cluster's node keeps its store in PostgreSQL: a SQLite file put back
    // in its data directory would restore nothing it reads.
    if cfg.cluster.is_some() {
        anyhow::bail!(
            "{} is a node of a cluster (server.toml has [cluster]): its store is PostgreSQL, \
             which restore does not write yet; restore the backup on a single server's data \
             directory instead",
            data_dir.display()
        );
    }
    if std::net::TcpListener::bind(cfg.listen).is_err() {
        anyhow::bail!(
            "{} is in use: stop the server before restoring (systemctl stop lectern-server)",
            cfg.listen
        );
    }
    Ok(())
}

/// Keeps the current database, if any, as `backups/pre-restore-<time>.db`.
fn keep_aside(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let db = data_dir.join(DB_FILE);
    let backups = data_dir.join("backups");
    std::fs::create_dir_all(&backups)?;
    if db.exists() {
        let aside = lectern_server::maintenance::new_backup_file(&backups, "pre-restore")?;
        // Through SQLite, so what the WAL holds is in the copy too.
        lectern_server::maintenance::write_backup(&SqliteStore::open(&db)?, &aside)?;
        println!("kept the current database as {}", aside.display());
    }
    Ok(())
}

/// Tables whose rows the server keeps files for, in a folder of the data
/// directory named by the row's id (`reports::dir`, the gateway's evidence,
/// `files::collection_dir`, the exams' `paper_dir`).
const ID_FOLDERS: [(&str, &str); 4] = [
    ("reports", "reports"),
    ("violations", "evidence"),
    ("collections", "collected"),
    ("exams", "exam-papers"),
];

/// `restore --school`: one school's copy in place of that school's rows,
/// the whole database kept aside first; the restore is written to the
/// school's audit log.
fn restore_school(file: &std::path::Path, data_dir: &std::path::Path) -> anyhow::Result<()> {
    lectern_store::verify_database(file)
        .map_err(|e| anyhow::anyhow!("{} is not a usable backup: {e}", file.display()))?;
    refuse_while_serving(data_dir)?;
    let db = data_dir.join(DB_FILE);
    if !db.exists() {
        anyhow::bail!(
            "{} holds no database: restore the copy whole (without --school)",
            data_dir.display()
        );
    }
    keep_aside(data_dir)?;
    let store = SqliteStore::open(&db)?;
    let watch: Vec<&str> = ID_FOLDERS.iter().map(|(t, _)| *t).collect();
    let done = store
        .restore_school(file, &data_dir.join("lectern.db.school-restoring"), &watch)
        .map_err(|e| anyhow::anyhow!("{} was not restored: {e}", file.display()))?;
    // What the server kept on disk for rows that went: another school's
    // next row may be given the same id.
    for (table, id) in &done.gone {
        if let Some((_, folder)) = ID_FOLDERS.iter().find(|(t, _)| t == table) {
            let dir = data_dir.join(folder).join(id.to_string());
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("cannot remove {}: {e}", dir.display());
                }
            }
        }
    }
    let rows: u64 = done.rows.iter().map(|(_, n)| n).sum();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    store.audit(&lectern_store::NewAudit {
        school_id: done.school,
        actor: "system".into(),
        address: None,
        action: "school.restore".into(),
        detail: format!(
            "restored from {name}: {rows} rows put back, {} removed",
            done.removed
        ),
        devices: Vec::new(),
        command_id: None,
        outcome: "ok".into(),
    })?;
    println!(
        "restored school {} ({}) from {}: {rows} rows in {} tables, {} rows removed; \
         start the server again",
        done.school,
        done.name,
        file.display(),
        done.rows.len(),
        done.removed
    );
    Ok(())
}
