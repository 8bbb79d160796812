//! The collection's one-time setup (`power-revenue setup`): the window query's index and
//! change-stream pre-images; and which restatement mode is in force.

use crate::config::Config;
use crate::limits;
use crate::reconcile;
use bson::{doc, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

/// How changes to already-reported sales are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestatementMode {
    /// The collection keeps pre-images: every change moves exactly its difference between
    /// windows, live totals included, and corrections know their windows.
    PreImages,
    /// No pre-images: changes mark their window (or, when it cannot be told, every reported
    /// window within the horizon) for a re-check against the database at the next report.
    Recheck,
}

impl RestatementMode {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::PreImages => "pre-images (exact live totals; corrections per window)",
            Self::Recheck => {
                "re-check (no pre-images: changed windows re-checked against the database at the next report; run `power-revenue setup` to enable pre-images)"
            }
        }
    }
}

/// Whether the collection keeps change-stream pre-images (`changeStreamPreAndPostImages`).
pub async fn mode(coll: &Collection<Document>) -> mongodb::error::Result<RestatementMode> {
    let reply = coll
        .client()
        .database(coll.namespace().db.as_str())
        .run_command(doc! {
            "listCollections": 1,
            "filter": { "name": coll.name() },
            "nameOnly": false,
            "maxTimeMS": limits::max_time_ms(limits::COMMAND),
        })
        .await?;
    let enabled = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .ok()
        .and_then(|batch| batch.first()?.as_document()?.get_document("options").ok())
        .and_then(|o| o.get_document("changeStreamPreAndPostImages").ok())
        .and_then(|p| p.get_bool("enabled").ok())
        .unwrap_or(false);
    Ok(if enabled {
        RestatementMode::PreImages
    } else {
        RestatementMode::Recheck
    })
}

/// What `setup` did.
#[derive(Debug)]
pub struct SetupOutcome {
    pub index_name: String,
    pub index_keys: Document,
    /// `Err` carries why pre-images could not be turned on (the service still works).
    pub pre_images: Result<(), mongodb::error::Error>,
}

/// Creates (idempotently) the index the window query uses and turns on pre-images where the
/// user may (`collMod` needs the `collMod` privilege; MongoDB 6.0 or later).
pub async fn run(
    config: &Config,
    coll: &Collection<Document>,
) -> mongodb::error::Result<SetupOutcome> {
    let model = reconcile::window_index(config);
    let index_keys = model.keys.clone();
    let created = coll
        .create_index(model)
        .max_time(limits::INDEX_BUILD)
        .await?;
    let pre_images = coll
        .client()
        .database(coll.namespace().db.as_str())
        .run_command(doc! {
            "collMod": coll.name(),
            "changeStreamPreAndPostImages": { "enabled": true },
            "maxTimeMS": limits::max_time_ms(limits::COMMAND),
        })
        .await
        .map(drop);
    Ok(SetupOutcome {
        index_name: created.index_name,
        index_keys,
        pre_images,
    })
}
