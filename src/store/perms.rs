//! The state directory's permissions. It holds every report's revenue, so it belongs to the
//! service user alone: the directory 0700, its files 0600. A directory others may write to is
//! refused (they could have changed what it holds); one they may only read is tightened.
//!
//! Files sled creates later (snapshots, blobs) get their mode from the process umask, which
//! `main` sets to 0077 before anything is opened: a chmod after opening would miss every file
//! sled creates while running. What was already there (an older version's 0644 files) is
//! tightened here.

use super::StoreError;
use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use tracing::{info, warn};

pub(super) const DIR_MODE: u32 = 0o700;
pub(super) const FILE_MODE: u32 = 0o600;
/// Group- or world-writable.
const OTHERS_WRITE: u32 = 0o022;
/// Any access by group or others.
const OTHERS_ANY: u32 = 0o077;

/// Creates `dir` 0700, or checks an existing one: refused if others may write to it, tightened
/// to 0700 if they may read it.
pub(super) fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let open_error = |e: std::io::Error| StoreError::Open {
        dir: dir.into(),
        reason: e.kind().to_string(),
    };
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The parents as `create_dir_all` makes them (they may be shared, like /var/lib).
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(open_error)?;
            }
            match DirBuilder::new().mode(DIR_MODE).create(dir) {
                Ok(()) => {}
                // Created by someone else meanwhile: checked like any existing directory.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return prepare_dir(dir),
                Err(e) => return Err(open_error(e)),
            }
            // mkdir takes the umask off the mode; set it outright so no umask matters.
            return std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
                .map_err(open_error);
        }
        Err(e) => return Err(open_error(e)),
    };
    if !meta.is_dir() {
        return Err(StoreError::Open {
            dir: dir.into(),
            reason: "not a directory".into(),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & OTHERS_WRITE != 0 {
        return Err(StoreError::Writable {
            dir: dir.into(),
            mode,
        });
    }
    if mode & OTHERS_ANY != 0 {
        tighten(dir, mode, DIR_MODE);
    }
    Ok(())
}

/// Tightens every file (0600) and directory (0700) under `dir` that others may access: state
/// written by a version that left them 0644. Files sled creates from now on follow the umask.
pub(super) fn tighten_contents(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // Not following symlinks: only what is really in the directory is ours to change.
        let Ok(meta) = entry.metadata() else { continue };
        let mode = meta.permissions().mode() & 0o777;
        let path = entry.path();
        if meta.is_dir() {
            if mode & OTHERS_ANY != 0 {
                tighten(&path, mode, DIR_MODE);
            }
            tighten_contents(&path);
        } else if meta.is_file() && mode & OTHERS_ANY != 0 {
            tighten(&path, mode, FILE_MODE);
        }
    }
}

fn tighten(path: &Path, from: u32, to: u32) {
    match std::fs::set_permissions(path, Permissions::from_mode(to)) {
        Ok(()) => {
            info!(path = %path.display(), from = format!("{from:04o}"), to = format!("{to:04o}"), "Tightened state permissions: the state directory is the service user's alone.")
        }
        Err(error) => {
            warn!(path = %path.display(), mode = format!("{from:04o}"), %error, "State is readable by others and could not be tightened; run chmod -R go-rwx on the state directory.")
        }
    }
}
