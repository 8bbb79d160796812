//! Crash and error points for fault-injection tests: built with the `failpoints` feature (the
//! tests enable it; release builds do not), `POWER_REVENUE_FAILPOINT=NAME` (or `NAME:N`) makes
//! the process abort, as `kill -9` would, the first (or N-th) time it reaches a crash point of
//! that name ([`hit`]), or a panic point panic then ([`panics`]: a bug in a task), or makes an
//! error point of that name fail every time ([`fails`]).
//! Armed or not, a point costs one relaxed atomic load; without the feature, nothing.

/// A named crash point.
#[inline]
pub(crate) fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    armed::hit(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// A named panic point: panics the first (or N-th) time it is reached, as a bug would, for
/// the supervisor to catch ([`crate::supervisor`]). The panic names the caller's line.
#[inline]
#[track_caller]
pub(crate) fn panics(name: &str) {
    #[cfg(feature = "failpoints")]
    if armed::reached(name) {
        panic!("failpoint {name}");
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// A named error point: `true` when armed, and the caller then fails as the real operation
/// can (for failures the test server cannot be made to produce on cue).
#[inline]
pub(crate) fn fails(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    return armed::is(name);
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

/// A named hang point: when armed, never returns (a query that outlasts any shutdown grace,
/// which the test server cannot be made to run); says so on stderr for the test to wait on.
pub(crate) async fn hangs(name: &str) {
    if fails(name) {
        eprintln!("failpoint {name}: holding the query");
        std::future::pending::<()>().await;
    }
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    use std::sync::LazyLock;

    static ARMED: LazyLock<Option<(String, u32)>> = LazyLock::new(|| {
        let spec = std::env::var("POWER_REVENUE_FAILPOINT").ok()?;
        let (name, n) = spec.split_once(':').unwrap_or((&spec, "1"));
        Some((name.to_owned(), n.parse().unwrap_or(1)))
    });
    static HITS: AtomicU32 = AtomicU32::new(0);

    pub(super) fn is(name: &str) -> bool {
        ARMED.as_ref().is_some_and(|(armed, _)| armed == name)
    }

    /// Whether this is the N-th time the armed point `name` is reached.
    pub(super) fn reached(name: &str) -> bool {
        ARMED
            .as_ref()
            .is_some_and(|(armed, n)| armed == name && HITS.fetch_add(1, Relaxed) + 1 == *n)
    }

    pub(super) fn hit(name: &str) {
        if reached(name) {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}
