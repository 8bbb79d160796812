//! The running service: opens the state, builds the MongoDB client, and runs the tailer, the
//! outbox worker, the oplog and silence watchers, the history import, the retention pruner and
//! the HTTP listener under one [`Supervisor`] until shutdown, or until one of them fails.

use crate::alert::Alerter;
use crate::config::{scrub, Config, Silence};
use crate::deliver::{Deliverer, Sink};
use crate::http::{self, HttpState};
use crate::source::{Live, Sales, Tailer, OPEN_TIMEOUT};
use crate::store::Store;
use crate::supervisor::Supervisor;
use anyhow::Context;
use bson::Document;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub struct App {
    config: Arc<Config>,
    store: Store,
    live: Arc<Live>,
    sales: Sales,
    listener: TcpListener,
    sink: Sink,
}

impl App {
    /// Everything that can fail fast fails here, before the first connection attempt.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let mongo = config.mongo()?.clone();
        let store = Store::open(&config.state_dir)?;
        store.check_windows(&config.window, &config.state_dir)?;
        let sales = Sales {
            stream: collection_for(&config, STREAM_APP).await?,
            queries: collection(&config).await?,
        };
        let listener = TcpListener::bind(config.http_addr).await.with_context(|| {
            format!(
                "cannot listen on {}; set POWER_REVENUE_HTTP_ADDR to a free address",
                config.http_addr
            )
        })?;
        let bound = listener.local_addr()?;
        crate::store::record_http_addr(&config.state_dir, bound).with_context(|| {
            format!(
                "cannot write to the state directory {}",
                config.state_dir.display()
            )
        })?;
        info!(mongodb = %mongo.redacted, database = %mongo.database, collection = %mongo.collection, "Configured.");
        let sink = Sink::from_config(&config);
        crate::telemetry::prometheus(); // install the recorder before anything is counted
        Ok(App {
            config: Arc::new(config),
            store,
            live: Arc::new(Live::default()),
            sales,
            listener,
            sink,
        })
    }

    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Runs until `shutdown`. A task that fails, panics or ends on its own stops the others
    /// and the service, with the cause as the error ([`Supervisor`]).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        let mut tasks = Supervisor::new(stop.clone());
        let outbox = Arc::new(Notify::new());
        let alerts = Alerter::supervised(self.store.clone(), outbox.clone(), tasks.short_lived());
        let tailer = Tailer::restore(
            self.sales.clone(),
            self.config.clone(),
            self.store.clone(),
            self.live.clone(),
            outbox.clone(),
            alerts.clone(),
            chrono::Utc::now(),
        )?;
        let silence = Arc::new(crate::silence::Board::default());
        let importer = crate::import::Importer {
            coll: self.sales.queries.clone(),
            config: self.config.clone(),
            store: self.store.clone(),
            live: self.live.clone(),
            began: chrono::Utc::now(),
        };
        let watcher = crate::silence::Watcher {
            config: self.config.clone(),
            live: self.live.clone(),
            alerts: alerts.clone(),
            store: self.store.clone(),
            board: silence.clone(),
        };
        let deliverer = Deliverer {
            coll: self.sales.queries.clone(),
            config: self.config.clone(),
            store: self.store.clone(),
            sink: self.sink,
            alerts,
        };
        info!(http = %self.listener.local_addr()?, "power-revenue running.");

        tasks.spawn("change-stream", tailer.run(stop.clone()));
        // The stream first: pending reports' queries wait for its first open attempt, so that
        // on a busy server a restart's stream does not queue behind them.
        let live = self.live.clone();
        let outbox_stop = stop.clone();
        tasks.spawn("outbox", async move {
            tokio::select! {
                _ = live.first_open_attempt(OPEN_TIMEOUT) => {}
                _ = outbox_stop.cancelled() => return Ok(()),
            }
            deliverer.run(outbox, outbox_stop).await
        });
        tasks.spawn(
            "oplog-watcher",
            crate::source::oplog::watch_headroom(
                self.sales.queries.client().clone(),
                self.live.clone(),
                stop.clone(),
            ),
        );
        if matches!(self.config.silence, Silence::After { .. }) {
            tasks.spawn("silence-watcher", watcher.run(stop.clone()));
        }
        // Finite: it ends when the days before the first start are in; failing, it stops the
        // service like any other task.
        tasks.spawn_finite("import", importer.run(stop.clone()));
        tasks.spawn(
            "retention",
            crate::retention::run(self.store.clone(), self.config.clone(), stop.clone()),
        );
        let router = http::router(HttpState::new(
            self.store.clone(),
            self.live.clone(),
            self.config.clone(),
            silence,
        ));
        let serve =
            axum::serve(self.listener, router).with_graceful_shutdown(stop.cancelled_owned());
        tasks.spawn("http-server", async move { serve.await });
        Ok(tasks.run().await?)
    }
}

/// The application name of the change stream's client (see [`Sales`]).
pub(crate) const STREAM_APP: &str = "power-revenue-stream";
/// The application name of the client every query goes through.
pub const QUERIES_APP: &str = "power-revenue";

/// The sales collection for queries; no I/O happens until the first operation.
pub async fn collection(config: &Config) -> anyhow::Result<Collection<Document>> {
    collection_for(config, QUERIES_APP).await
}

/// The sales collection through a client of its own, named `app_name` to the server.
pub(crate) async fn collection_for(
    config: &Config,
    app_name: &str,
) -> anyhow::Result<Collection<Document>> {
    let mongo = config.mongo()?;
    let mut options = ClientOptions::parse(mongo.uri.expose_secret())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "MONGODB_URI could not be resolved ({}); check the host names",
                scrub(&e.kind.to_string(), mongo.uri.expose_secret())
            )
        })?;
    options.app_name = Some(app_name.into());
    // Fail a server selection in seconds so "unreachable" shows up in the log quickly (the
    // driver's default is 30 s), unless the URI asks for its own `serverSelectionTimeoutMS`.
    options
        .server_selection_timeout
        .get_or_insert(Duration::from_secs(10));
    // The driver builds the TLS setup here, before any connection: a file it cannot read is
    // a setting to fix, said in one line without the URI.
    let client = Client::with_options(options).map_err(|e| {
        let kind = scrub(&e.kind.to_string(), mongo.uri.expose_secret());
        let first = kind.lines().next().unwrap_or_default().to_owned();
        crate::config::SettingError(format!(
            "MONGODB_URI's options cannot be used ({first}); check tlsCAFile and tlsCertificateKeyFile"
        ))
    })?;
    Ok(client
        .database(&mongo.database)
        .collection(&mongo.collection))
}
