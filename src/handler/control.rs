//! The control headers (`[control] headers = true`): `x-sluice-profile`
//! picks a profile and `x-sluice-inject` forces a fault, for one request.
//! At most `[control] max_active` forced faults are in flight at once; each
//! holds a [`ControlGuard`] until its response ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::http::request::Parts;
use tracing::warn;

use crate::config::{Profile, parse_fault_header};
use crate::fault::Fault;
use crate::live::Snapshot;

/// Request header picking a profile (when `[control] headers = true`).
pub(crate) const PROFILE_CONTROL: &str = "x-sluice-profile";
/// Request header forcing a fault (when `[control] headers = true`).
pub(crate) const INJECT_CONTROL: &str = "x-sluice-inject";
/// sluice's own request headers: read by the sluice they reach, and never
/// forwarded upstream, so a chain of sluices (a proxy in front of a mock)
/// applies a header-driven fault once, not once per hop.
pub(crate) const CONTROL_HEADERS: [&str; 2] = [PROFILE_CONTROL, INJECT_CONTROL];

/// Counts one header-driven fault in flight; dropped when its response is done.
#[derive(Debug)]
pub(crate) struct ControlGuard(Arc<AtomicUsize>);

impl Drop for ControlGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the control headers decided for one request.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// The fault they force, if any.
    pub(crate) fault: Option<Fault>,
    /// Held while that fault is in flight.
    pub(crate) guard: Option<ControlGuard>,
}

/// Applies the control headers, when enabled: `x-sluice-profile` swaps
/// `profile`, `x-sluice-inject` forces a fault (at most `max_active` at
/// once, counted in `active`).
///
/// # Errors
/// The message of a 400 naming the header and what it must look like.
pub(crate) fn apply(
    snapshot: &Snapshot,
    head: &Parts,
    profile: &mut Arc<Profile>,
    active: &Arc<AtomicUsize>,
) -> Result<Control, String> {
    let control = snapshot.config.control;
    if !control.headers {
        return Ok(Control::default());
    }
    // A value that is not visible ASCII is refused, not ignored: a test
    // that meant to inject a fault must not pass silently without it.
    let header = |name: &str| -> Result<Option<&str>, String> {
        match head.headers.get(name) {
            None => Ok(None),
            Some(value) => value.to_str().map(|v| Some(v.trim())).map_err(|_| {
                format!(
                    "{name}: the value must be visible ASCII, such as \"stream_error; after_tokens=3\""
                )
            }),
        }
    };
    if let Some(name) = header(PROFILE_CONTROL)? {
        *profile = snapshot.router.profile(name).ok_or_else(|| {
            format!("{PROFILE_CONTROL}: no profile named {name:?} in the sluice config")
        })?;
    }
    let Some(spec) = header(INJECT_CONTROL)? else {
        return Ok(Control::default());
    };
    let fault = parse_fault_header(spec).map_err(|error| error.to_string())?;
    let in_flight = active.fetch_add(1, Ordering::AcqRel);
    let guard = ControlGuard(Arc::clone(active));
    if in_flight >= control.max_active {
        warn!(
            max_active = control.max_active,
            "x-sluice-inject ignored: too many header-driven faults at once"
        );
        return Ok(Control::default());
    }
    Ok(Control { fault: Some(fault), guard: Some(guard) })
}

#[cfg(test)]
mod prefix_tests {
    /// The proxy looks for sluice's own headers by this prefix before it
    /// removes them one by one (`handler::proxy`).
    #[test]
    fn every_sluice_request_header_starts_with_x_sluice() {
        for name in super::CONTROL_HEADERS.into_iter().chain([crate::report::RUN_HEADER]) {
            assert!(name.starts_with("x-sluice-"), "{name}");
        }
    }
}
