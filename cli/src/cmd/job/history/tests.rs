//! `job history` blocks and diffs from fixed versions.

use caravan_schemas::{JobVersionSpec, JobVersionStatus, ObjectMeta, job_version, mock};

use super::*;

fn version(n: i64, greeting: &str, stable: bool) -> JobVersion {
    let mut spec = mock::job("web").spec;
    spec.groups[0].tasks[0]
        .env
        .insert("GREETING".into(), greeting.into());
    JobVersion {
        metadata: ObjectMeta {
            name: Some(job_version::name_for("web", n)),
            creation_timestamp: Some(format!("2026-01-02T15:0{n}:00Z")),
            ..ObjectMeta::default()
        },
        spec: JobVersionSpec {
            job_name: "web".into(),
            version: n,
            job: spec,
            ..JobVersionSpec::default()
        },
        status: Some(JobVersionStatus { stable }),
        ..JobVersion::default()
    }
}

#[test]
fn versions_are_listed_newest_first_without_diffs() {
    let versions = [version(2, "hi", false), version(0, "hello", true)];
    assert_eq!(
        history("web", &versions, false).unwrap(),
        "\
Version     = 2
Stable      = false
Submit Date = 2026-01-02T15:02:00Z

Version     = 0
Stable      = true
Submit Date = 2026-01-02T15:00:00Z
"
    );
}

#[test]
fn each_version_but_the_oldest_shows_its_changes() {
    let mut scaled = version(3, "hi", false);
    scaled.spec.job.groups[0].count = Some(4);
    let versions = [scaled, version(2, "hi", true), version(1, "hello", true)];
    assert_eq!(
        history("web", &versions, true).unwrap(),
        "\
Version     = 3
Stable      = false
Submit Date = 2026-01-02T15:03:00Z
Diff        =
+/- Job: \"web\"
+/- Task Group: \"web\"
  +/- count: \"10\" => \"4\"
  Task: \"web\"

Version     = 2
Stable      = true
Submit Date = 2026-01-02T15:02:00Z
Diff        =
+/- Job: \"web\"
+/- Task Group: \"web\"
  +/- Task: \"web\"
    +/- env[GREETING]: \"hello\" => \"hi\"

Version     = 1
Stable      = true
Submit Date = 2026-01-02T15:01:00Z
"
    );
}
