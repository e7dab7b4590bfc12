use super::*;
use CheckStatus::{Critical, Passing, Warning};

fn registration() -> ServiceRegistration {
    ServiceRegistration {
        api_version: "caravan.dev/v1".into(),
        kind: "ServiceRegistration".into(),
        spec: ServiceRegistrationSpec {
            service_name: "web".into(),
            address: "10.0.0.5".into(),
            port: 20001,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A check that has run.
fn check(name: &str, status: CheckStatus, output: &str) -> LiveCheck {
    LiveCheck {
        name: name.into(),
        type_name: "http",
        status,
        output: output.into(),
        at: Some(SystemTime::UNIX_EPOCH),
        passing_since: None,
    }
}

fn written(checks: &[LiveCheck], at: Instant) -> Written {
    Written {
        spec: registration().spec,
        status: status_of(checks),
        at,
    }
}

#[test]
fn the_aggregate_is_the_worst_check_and_passing_without_checks() {
    assert_eq!(status_of(&[]).status, Passing);
    let status = status_of(&[check("a", Passing, ""), check("b", Warning, "slow")]);
    assert_eq!(status.status, Warning);
    assert_eq!(status.checks[1].name, "b");
    assert_eq!(status.checks[1].r#type, "http");
    assert_eq!(status.checks[1].output, "slow");
    assert_eq!(
        status.checks[1].timestamp.as_deref(),
        Some("1970-01-01T00:00:00.000Z")
    );
}

#[test]
fn wanted_registrations_are_created_with_their_statuses_and_replaced_when_changed() {
    let now = Instant::now();
    let checks = [check("a", Critical, "")];
    let Next::Write(Write::Create(object)) = next(Some(&registration()), false, &checks, None, now)
    else {
        panic!("a create")
    };
    assert_eq!(
        object.status,
        Some(status_of(&checks)),
        "never seen passing first"
    );
    let mut moved = registration();
    moved.spec.tags = vec!["v2".into()];
    let w = written(&checks, now);
    assert!(matches!(
        next(Some(&moved), false, &checks, Some(&w), now),
        Next::Write(Write::Replace(o)) if o.spec.tags == ["v2"]
    ));
    assert_eq!(
        next(Some(&registration()), false, &checks, Some(&w), now),
        Next::Nothing
    );
}

#[test]
fn registrations_no_longer_wanted_are_deleted_unless_held() {
    let now = Instant::now();
    let w = written(&[], now);
    assert_eq!(
        next(None, false, &[], Some(&w), now),
        Next::Write(Write::Delete)
    );
    assert_eq!(next(None, true, &[], Some(&w), now), Next::Nothing);
    assert_eq!(next(None, false, &[], None, now), Next::Forget);
    assert_eq!(next(None, true, &[], None, now), Next::Forget);
}

#[test]
fn status_changes_are_written_at_once_and_outputs_at_most_every_refresh() {
    let t0 = Instant::now();
    let w = written(&[check("a", Critical, "refused")], t0);
    let reg = registration();
    let passing = [check("a", Passing, "200 OK")];
    assert_eq!(
        next(Some(&reg), false, &passing, Some(&w), t0),
        Next::Write(Write::PatchStatus(status_of(&passing)))
    );
    let other_output = [check("a", Critical, "timed out")];
    assert_eq!(
        next(
            Some(&reg),
            false,
            &other_output,
            Some(&w),
            t0 + Duration::from_secs(5)
        ),
        Next::WaitUntil(t0 + OUTPUT_REFRESH)
    );
    assert_eq!(
        next(
            Some(&reg),
            false,
            &other_output,
            Some(&w),
            t0 + OUTPUT_REFRESH
        ),
        Next::Write(Write::PatchStatus(status_of(&other_output)))
    );
    // A check's time alone never causes a write.
    let mut later = check("a", Critical, "refused");
    later.at = Some(SystemTime::now());
    assert_eq!(
        next(Some(&reg), false, &[later], Some(&w), t0),
        Next::Nothing
    );
}

#[test]
fn a_written_status_waits_for_every_check_to_run_again() {
    // An agent that restarted adopts the passing registration it wrote before; its checks
    // start over at their initial status.
    let t0 = Instant::now();
    let w = written(
        &[check("a", Passing, "200 OK"), check("b", Passing, "")],
        t0,
    );
    let mut initial = check("a", Critical, "");
    initial.at = None;
    let ran = check("b", Passing, "");
    let reg = registration();
    assert_eq!(
        next(
            Some(&reg),
            false,
            &[initial.clone(), ran.clone()],
            Some(&w),
            t0
        ),
        Next::Nothing
    );
    // Not written yet: created at the initial status at once.
    assert!(matches!(
        next(Some(&reg), false, &[initial, ran], None, t0),
        Next::Write(Write::Create(_))
    ));
}
