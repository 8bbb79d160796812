//! Time limits on everything the service asks of the server. Every command carries `maxTimeMS`,
//! so the server itself stops work nobody waits for any more (the query of a process that was
//! killed, or that gave up waiting); the client waits a little longer than the limit at most
//! (a server too busy to answer at all, or a connection that hangs).
//!
//! The window query's limit is a setting (`POWER_REVENUE_QUERY_TIMEOUT`): how long a `$facet`
//! takes depends on the window's size. The others are fixed here.

use std::future::IntoFuture;
use std::time::Duration;

/// `ping` (the server's cluster time), `listCollections` (the restatement mode), `collMod`.
pub(crate) const COMMAND: Duration = Duration::from_secs(10);
/// The oldest oplog entry: some servers (the Python SecantusDB) scan the whole oplog for it.
pub(crate) const OPLOG_READ: Duration = Duration::from_secs(30);
/// Building the window query's index (`setup`): on a large collection this takes a while, and
/// an operator runs it once, watching.
pub(crate) const INDEX_BUILD: Duration = Duration::from_secs(3600);
/// How much longer than a command's limit the client waits for the server's answer.
const CLIENT_SLACK: Duration = Duration::from_secs(5);

/// The longest a report waits before re-running queries its process died during.
const INTERRUPTED_MAX_WAIT: Duration = Duration::from_secs(60);

/// How long after the last start to wait before running a report's queries again, when `n`
/// rounds of them in a row began and never finished (the process died): 2 s, 4 s, 8 s, … up to
/// a minute. A server that does not stop the queries of a disconnected client (MongoDB does
/// since 4.2; the Python SecantusDB does not) may still be running them: a crash loop must not
/// add another copy on every start.
pub(crate) fn after_interrupted(n: u32) -> Duration {
    Duration::from_secs(1u64.checked_shl(n).unwrap_or(u64::MAX)).min(INTERRUPTED_MAX_WAIT)
}

/// MongoDB's `MaxTimeMSExpired`: the server stopped the command at its limit.
const MAX_TIME_EXPIRED: i32 = 50;

/// Whether the server stopped the command at its `maxTimeMS`.
pub(crate) fn expired(error: &mongodb::error::Error) -> bool {
    matches!(&*error.kind, mongodb::error::ErrorKind::Command(c) if c.code == MAX_TIME_EXPIRED)
}

/// `limit` as a command's `maxTimeMS`: whole milliseconds, at least one (0 means no limit).
pub(crate) fn max_time_ms(limit: Duration) -> i64 {
    i64::try_from(limit.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The client gave up waiting for an answer.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the server did not answer within {} s", .waited.as_secs())]
pub(crate) struct NoAnswer {
    pub waited: Duration,
}

/// Waits for `op`, a command limited to `limit` on the server, a little longer than that.
pub(crate) async fn answer<T>(
    limit: Duration,
    op: impl IntoFuture<Output = T>,
) -> Result<T, NoAnswer> {
    let waited = limit.saturating_add(CLIENT_SLACK);
    tokio::time::timeout(waited, op)
        .await
        .map_err(|_| NoAnswer { waited })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_queries_wait_longer_each_time_up_to_a_minute() {
        let waits: Vec<u64> = [1, 2, 3, 5, 6, 64, u32::MAX]
            .map(|n| after_interrupted(n).as_secs())
            .to_vec();
        assert_eq!(waits, [2, 4, 8, 32, 60, 60, 60]);
    }

    #[test]
    fn max_time_is_never_zero_and_never_overflows() {
        assert_eq!(max_time_ms(Duration::ZERO), 1);
        assert_eq!(max_time_ms(Duration::from_micros(10)), 1);
        assert_eq!(max_time_ms(Duration::from_secs(300)), 300_000);
        assert_eq!(max_time_ms(Duration::MAX), i64::MAX);
    }
}
