//! `power-revenue`: args → config → telemetry → command (serve: `App::build` → run until signal).

use clap::{Parser, Subcommand};
use power_revenue::config::{Config, Settings};
use power_revenue::{app::App, commands, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

// Each getMore reply (a few hundred KB) is a fresh allocation: glibc's thread arenas hand its
// pages back and fault them in again on every batch (90 k page faults per million events, a
// third of the service's CPU; benches/README.md). mimalloc reuses them; `no_thp` keeps it off
// transparent huge pages, which tripled the resident size for no gain here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "power-revenue",
    version,
    about = "Live power-sales revenue from the MongoDB change stream, reported to Slack once per window."
)]
struct Cli {
    /// TOML file with settings (lowest precedence after defaults).
    #[arg(long, env = "POWER_REVENUE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tail the change stream and report every window (the always-on service).
    Serve,
    /// Query one window and post its report, as the old Lambda did.
    Report {
        /// Start of the window, e.g. 2025-05-29T12:00:00Z.
        #[arg(long)]
        window_start: chrono::DateTime<chrono::Utc>,
        /// Print the message instead of posting it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the checkpoint: token age, open windows, last and pending reports.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Once per collection: the (status, time) index the window query needs, and change-stream
    /// pre-images (exact restatements) where the user may turn them on.
    #[command(alias = "init-indexes")]
    Setup,
    /// GET /healthz of the running service (container HEALTHCHECK, no shell or curl needed):
    /// exit 0 when it answers 200, else 1 with one line on stderr. Never connects to MongoDB.
    Healthcheck {
        /// Ask /readyz instead (with the API token, if one is set): stream connected,
        /// checkpoint fresh (a Kubernetes readiness probe that needs no token in its manifest).
        #[arg(long)]
        ready: bool,
    },
    /// Run everything against a local SecantusDB with synthetic sales (20 s windows by default).
    #[cfg(feature = "demo")]
    Demo,
}

fn main() -> ExitCode {
    // Before anything creates a file: the state directory holds every report's revenue, and
    // sled creates its files (snapshots, blobs) as it runs, with the mode the umask leaves.
    // Setting the umask is the one way every one of them is born 0600; a chmod after opening
    // would miss those created later. Nothing this process writes is for other users.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    #[cfg_attr(not(feature = "demo"), allow(unused_mut))]
    let mut settings = cli.settings;
    #[cfg(feature = "demo")]
    if matches!(cli.command, Command::Demo) {
        if settings.window.is_none() && cli.config.is_none() {
            // A summary every three windows, so the demo shows one within a minute.
            settings.summary.get_or_insert("1m".into());
        }
        settings.window.get_or_insert("20s".into());
        settings.grace.get_or_insert("2s".into());
        settings.state_dir.get_or_insert(
            std::env::temp_dir().join(format!("power-revenue-demo-{}", std::process::id())),
        );
    }
    let needs_mongo = matches!(
        cli.command,
        Command::Serve | Command::Report { .. } | Command::Setup
    );
    let config = match Config::load(settings, cli.config.as_deref()) {
        Ok(c) if needs_mongo && c.mongo().is_err() => Err(c.mongo().unwrap_err()),
        other => other,
    };
    let config = match config {
        Ok(c) => c,
        // A health check has two answers: Docker reserves exit 2, and a probe that cannot even
        // read its settings is not healthy.
        Err(e) if matches!(cli.command, Command::Healthcheck { .. }) => {
            eprintln!("power-revenue: unhealthy: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("power-revenue: {e}");
            return ExitCode::from(2);
        }
    };

    telemetry::init();
    // One thread: the work is a single stream's batches plus a few light tasks, and on a
    // worker pool every getMore's hand-offs to the driver's connection pool were thread
    // wake-ups (a tenth of the service's CPU; benches/README.md). Blocking work (sled's
    // flush, DNS) runs on threads of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("power-revenue: {e:#}");
            // A setting the state contradicts is a bad setting, like any other.
            let setting = e
                .downcast_ref::<power_revenue::store::StoreError>()
                .is_some_and(|s| s.is_setting())
                || e.downcast_ref::<power_revenue::config::SettingError>()
                    .is_some();
            if setting {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Owned for the command's life: the listener ends with it.
    let _signals =
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(stop_on_signal(shutdown.clone())));
    match command {
        Command::Serve => App::build(config).await?.run(shutdown).await,
        Command::Report {
            window_start,
            dry_run,
        } => commands::report(config, window_start, dry_run).await,
        Command::Status { json } => commands::status(config, json).await,
        #[cfg(feature = "demo")]
        Command::Demo => power_revenue::demo::demo(config, shutdown).await,
        Command::Setup => commands::setup(config).await,
        Command::Healthcheck { ready } => {
            let probe = if ready {
                commands::Probe::Ready
            } else {
                commands::Probe::Live
            };
            commands::healthcheck(&config, probe).await
        }
    }
}

/// SIGINT or SIGTERM: stop reading, checkpoint, exit 0.
async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Shutdown requested.");
    shutdown.cancel();
}
