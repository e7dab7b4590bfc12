//! Removing containers nobody owns any more (trap 4: an executor that died between create and
//! start leaves an init blocked forever, with its cgroups and state).

use std::path::Path;

use super::run;

/// Deletes (killing what still runs) every container under `state_root` whose id is not in
/// `keep`; returns the ids deleted. Failures are logged and skipped.
pub fn cleanup_orphans(state_root: &Path, keep: &[String]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state_root) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| !keep.contains(id))
        .collect();
    ids.sort();
    ids.retain(|id| match run::delete(state_root, id) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "could not delete an orphaned container");
            false
        }
    });
    ids
}
