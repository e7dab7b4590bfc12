//! Turning `KIND [NAME...]`, `KIND/NAME...` and `kind1,kind2` arguments into kinds and names.

use caravan_schemas::{GROUP, Kind};

/// One kind and the names asked for (none: every object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub names: Vec<String>,
}

/// Finds a kind by any spelling kubectl accepts: `job`, `jobs`, `Job`, `jb`,
/// `jobs.caravan.dev`, `job.v1.caravan.dev`.
pub fn parse_kind(word: &str) -> anyhow::Result<Kind> {
    let bare = word
        .strip_suffix(&format!(".v1.{GROUP}"))
        .or_else(|| word.strip_suffix(&format!(".{GROUP}")))
        .unwrap_or(word);
    Kind::lookup(bare)
        .ok_or_else(|| anyhow::anyhow!("the server doesn't have a resource type \"{word}\""))
}

/// Resolves positional resource arguments into targets, in the order given.
pub fn resolve(args: &[String]) -> anyhow::Result<Vec<Target>> {
    let Some(first) = args.first() else {
        anyhow::bail!("you must specify the type of resource to get");
    };
    if first.contains('/') {
        let mut targets: Vec<Target> = Vec::new();
        for arg in args {
            let Some((kind, name)) = arg.split_once('/') else {
                anyhow::bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'caravan get job/web' instead of 'caravan get job job/web')"
                );
            };
            if name.is_empty() {
                anyhow::bail!("{arg:?} names no object");
            }
            let kind = parse_kind(kind)?;
            match targets.iter_mut().find(|t| t.kind == kind) {
                Some(t) => t.names.push(name.to_owned()),
                None => targets.push(Target {
                    kind,
                    names: vec![name.to_owned()],
                }),
            }
        }
        return Ok(targets);
    }
    let names = args[1..].to_vec();
    if let Some(bad) = names.iter().find(|n| n.contains('/')) {
        anyhow::bail!("{bad:?}: mixing KIND NAME and KIND/NAME forms is not supported");
    }
    first
        .split(',')
        .filter(|k| !k.is_empty())
        .map(|k| {
            Ok(Target {
                kind: parse_kind(k)?,
                names: names.clone(),
            })
        })
        .collect()
}

/// `job.caravan.dev`, the prefix of `-o name` and apply/delete messages.
pub fn qualified_singular(kind: Kind) -> String {
    format!("{}.{GROUP}", kind.singular())
}

/// `jobs.caravan.dev`, as in server messages.
pub fn qualified_plural(kind: Kind) -> String {
    format!("{}.{GROUP}", kind.plural())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn targets_of(argv: &[&str]) -> anyhow::Result<Vec<Target>> {
        let cli = Cli::try_parse_from(argv).expect("arguments parse");
        match cli.command {
            Command::Get(get) => resolve(&get.resources),
            Command::Describe(d) => resolve(&d.resources),
            Command::Delete(d) => resolve(&d.resources),
            other => panic!("unexpected command {other:?}"),
        }
    }

    #[test]
    fn every_spelling_of_a_kind_resolves_through_the_parser() {
        for word in [
            "allocs",
            "alloc",
            "allocation",
            "Allocations",
            "allocations.caravan.dev",
        ] {
            let targets = targets_of(&["caravan", "get", word]).unwrap();
            assert_eq!(
                targets,
                [Target {
                    kind: Kind::Allocation,
                    names: vec![]
                }],
                "{word}"
            );
        }
        let targets = targets_of(&["caravan", "describe", "no", "n1", "n2"]).unwrap();
        assert_eq!(targets[0].kind, Kind::Node);
        assert_eq!(targets[0].names, ["n1", "n2"]);
    }

    #[test]
    fn kind_slash_name_groups_by_kind() {
        let targets = targets_of(&["caravan", "delete", "job/a", "ns/x", "jobs/b"]).unwrap();
        assert_eq!(
            targets,
            [
                Target {
                    kind: Kind::Job,
                    names: vec!["a".into(), "b".into()]
                },
                Target {
                    kind: Kind::Namespace,
                    names: vec!["x".into()]
                },
            ]
        );
    }

    #[test]
    fn comma_separated_kinds_list_each() {
        let targets = targets_of(&["caravan", "get", "jobs,evals", "-A"]).unwrap();
        let kinds: Vec<Kind> = targets.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [Kind::Job, Kind::Evaluation]);
    }

    #[test]
    fn unknown_kind_is_reported_like_kubectl() {
        let err = targets_of(&["caravan", "get", "pods"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server doesn't have a resource type \"pods\""
        );
    }

    #[test]
    fn global_flags_parse_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "caravan",
            "get",
            "jobs",
            "-n",
            "prod",
            "--address",
            "a:1,b:2",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace(), "prod");
        assert_eq!(cli.global.address, "a:1,b:2");
    }
}
