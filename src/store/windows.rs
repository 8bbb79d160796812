//! What the state was written with: its windows' length and time zone. Every window id,
//! total and checkpoint in it belongs to those; read as other windows they would count sales
//! twice, so other windows are refused ([`StoreError::WindowsChanged`]).

use super::{Store, StoreError};
use crate::window::WindowSpec;
use std::path::Path;

/// The windows the state was written with, as `"<seconds>s in <zone>"`.
const KEY_WINDOWS: &[u8] = b"windows";

impl Store {
    /// Refuses windows other than those the state was written with; records them the first
    /// time. `dir` is for the message.
    pub fn check_windows(&self, spec: &WindowSpec, dir: &Path) -> Result<(), StoreError> {
        let now = format!("{}s in {}", spec.length().num_seconds(), spec.tz().name());
        match self.tree.get(KEY_WINDOWS)? {
            Some(was) if was.as_ref() == now.as_bytes() => Ok(()),
            Some(was) => Err(StoreError::WindowsChanged {
                dir: dir.into(),
                was: String::from_utf8_lossy(&was).into_owned(),
                now,
            }),
            None => {
                self.tree.insert(KEY_WINDOWS, now.as_bytes())?;
                self.db.flush()?;
                Ok(())
            }
        }
    }
}
