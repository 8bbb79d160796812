//! The change stream read a whole server batch at a time, events borrowed from the reply.
//!
//! The driver's `ChangeStream` copies every event out of the reply, copies its resume token,
//! and runs it through serde, one `await` per event (≈ 7 % of the service's CPU in the
//! end-to-end benchmark; benches/README.md). This is the same `aggregate` with a
//! `$changeStream` stage and the same `getMore`s, through the driver's zero-copy batch cursor;
//! the resume token is tracked as the change-streams spec says (an event's `_id`, or the
//! batch's `postBatchResumeToken` once the batch is used up) and built only when a checkpoint
//! needs it. Resuming after an error is the tailer's job: it reopens from the token of the last
//! event it applied.

use crate::config::Fields;
use bson::{doc, Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf};
use futures::StreamExt;
use mongodb::change_stream::event::ResumeToken;
use mongodb::raw_batch_cursor::{RawBatch, RawBatchCursor};
use mongodb::Collection;
use std::time::Duration;

/// An open change stream on the sales collection.
pub struct RawChangeStream {
    cursor: RawBatchCursor,
    /// The reply to the `aggregate` itself, read at open for the stream's starting point.
    first: Option<Batch>,
}

impl RawChangeStream {
    /// Opens the stream after `token` (`startAfter`), or at the present without one. `limit`
    /// bounds the opening `aggregate` on the server (finding the resume point); each `getMore`
    /// after it waits at most `max_await` for events.
    pub async fn open(
        coll: &Collection<bson::Document>,
        fields: &Fields,
        fulfilled: &str,
        token: Option<&ResumeToken>,
        limit: Duration,
        max_await: Duration,
        batch_size: u32,
    ) -> mongodb::error::Result<RawChangeStream> {
        // Pre-images where the collection keeps them (`setup` turns that on): each event then
        // says exactly which sale it changed. Without, the server sends none and says nothing.
        let mut stage = doc! {
            "fullDocument": "updateLookup",
            "fullDocumentBeforeChange": "whenAvailable",
        };
        if let Some(token) = token {
            stage.insert("startAfter", bson::to_bson(token)?);
        }
        let mut pipeline = vec![doc! { "$changeStream": stage }];
        pipeline.extend(stream_pipeline(fields, fulfilled));
        let mut cursor = coll
            .aggregate(pipeline)
            .batch_size(batch_size)
            .max_time(limit)
            .max_await_time(max_await)
            .batch()
            .await?;
        // Already received with the cursor: no round trip.
        let first = cursor.next().await.transpose()?.map(|raw| Batch { raw });
        Ok(RawChangeStream { cursor, first })
    }

    /// The cluster time of the reply that opened the stream, if the server says: a stream
    /// opened without a token delivers what commits after about then.
    pub(crate) fn opened_at(&self) -> Option<bson::Timestamp> {
        let first = self.first.as_ref()?;
        first
            .raw
            .as_raw_document()
            .get_timestamp("operationTime")
            .ok()
    }

    /// Where a stream opened without a token starts: the first reply's
    /// `postBatchResumeToken`, if that reply holds no events (as the driver decides it).
    pub(crate) fn start_token(&self) -> Option<ResumeToken> {
        let first = self.first.as_ref()?;
        first
            .events()
            .ok()?
            .next()
            .is_none()
            .then(|| first.end_token())?
    }

    /// The next server batch (possibly empty); `None` once the server closed the cursor.
    pub async fn next_batch(&mut self) -> Option<mongodb::error::Result<Batch>> {
        if let Some(first) = self.first.take() {
            return Some(Ok(first));
        }
        Some(self.cursor.next().await?.map(|raw| Batch { raw }))
    }
}

/// One reply of the server: its events, borrowed, and where the stream stands after them.
pub struct Batch {
    raw: RawBatch,
}

impl Batch {
    /// The events, in stream order; `None` for one that cannot be read, which ends the batch.
    pub fn events(&self) -> mongodb::error::Result<impl Iterator<Item = Option<&RawDocument>>> {
        Ok(crate::raw::documents(self.raw.doc_slices()?.as_bytes()))
    }

    /// The position after the whole batch (`postBatchResumeToken`), where the server sends one.
    pub(crate) fn end_token(&self) -> Option<ResumeToken> {
        let cursor = self.raw.as_raw_document().get_document("cursor").ok()?;
        token_from(cursor.get("postBatchResumeToken").ok()??)
    }
}

/// The position just after `event`: its `_id`.
pub fn event_token(event: &RawDocument) -> Option<ResumeToken> {
    token_from(event.get("_id").ok()??)
}

/// A token is opaque: it is put in its stored form and read back as the store reads one.
fn token_from(value: RawBsonRef<'_>) -> Option<ResumeToken> {
    let mut doc = RawDocumentBuf::new();
    doc.append_ref("t", value);
    crate::store::decode_token(doc.as_bytes()).ok()
}

/// Server-side filter and projection: only events that may change a fulfilled sale, only the
/// fields we read. An update counts when it names one of our four fields (or a parent or child
/// of one: `$set {"meta.status": …}` names the dotted key itself, `$set {meta: …}` its parent);
/// inserts when fulfilled; replaces and deletes when the document was or is fulfilled, or the
/// server keeps no pre-image to say.
pub fn stream_pipeline(fields: &Fields, fulfilled: &str) -> Vec<Document> {
    let all = [
        &fields.time,
        &fields.amount,
        &fields.utility,
        &fields.status,
    ];
    let mut project = doc! {
        "operationType": 1, "documentKey": 1, "clusterTime": 1, "updateDescription": 1,
    };
    for f in all {
        project.insert(format!("fullDocument.{f}"), 1);
        project.insert(format!("fullDocumentBeforeChange.{f}"), 1);
    }
    let status = |image: &str| format!("{image}.{}", fields.status);
    let names = |list: Bson| {
        let hits: Vec<Bson> = all.iter().map(|f| names_path(f)).collect();
        doc! { "$gt": [ { "$size": { "$filter": { "input": list, "cond": { "$or": hits } } } }, 0 ] }
    };
    let updated = doc! { "$map": {
        "input": { "$objectToArray": { "$ifNull": ["$updateDescription.updatedFields", {}] } },
        "in": "$$this.k",
    } };
    let removed = doc! { "$ifNull": ["$updateDescription.removedFields", []] };
    let truncated = doc! { "$map": {
        "input": { "$ifNull": ["$updateDescription.truncatedArrays", []] },
        "in": "$$this.field",
    } };
    vec![
        doc! { "$match": { "$or": [
            { "operationType": "insert", status("fullDocument"): fulfilled },
            { "operationType": { "$in": ["replace", "delete"] }, "$or": [
                { status("fullDocument"): fulfilled },
                { status("fullDocumentBeforeChange"): fulfilled },
                { "fullDocumentBeforeChange": null },
            ] },
            { "operationType": "update", "$expr": { "$or": [
                names(updated.into()), names(removed.into()), names(truncated.into()),
            ] } },
        ] } },
        doc! { "$project": project },
    ]
}

/// `$$this` (a field name from an update) is `path`, a parent of it or a child of it.
fn names_path(path: &str) -> Bson {
    let name = "$$this";
    let dotted = format!("{path}.");
    doc! { "$or": [
        { "$eq": [name, path] },
        { "$eq": [ { "$substrBytes": [name, 0, dotted.len() as i64] }, &dotted ] },
        { "$eq": [
            { "$substrBytes": [path, 0, { "$add": [ { "$strLenBytes": name }, 1 ] }] },
            { "$concat": [name, "."] },
        ] },
    ] }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::Bson;

    #[test]
    fn event_tokens_round_trip_through_serde_like_stored_ones() {
        let event = bson::rawdoc! { "_id": { "_data": "8263A1" }, "operationType": "insert" };
        let token = event_token(&event).expect("an _id is a token");
        assert_eq!(
            bson::to_bson(&token).unwrap(),
            Bson::Document(doc! { "_data": "8263A1" })
        );
        let missing = bson::rawdoc! { "operationType": "insert" };
        assert!(event_token(&missing).is_none());
    }
}
