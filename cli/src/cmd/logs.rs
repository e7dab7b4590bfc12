//! `caravan logs ALLOC [TASK] [-f] [--stderr] [--tail N]`: a task's output, read by the agent of
//! the allocation's node and relayed by the server; bytes are written as they arrive.

use caravan_client::LogParams;
use clap::Args;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::cmd::Context;

/// Arguments of `caravan logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The allocation's name.
    pub alloc: String,
    /// The task; may be left out when the allocation has a single task.
    pub task: Option<String>,
    /// Keep streaming the output as the task writes it.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show the task's stderr instead of its stdout.
    #[arg(long)]
    pub stderr: bool,
    /// Show only the last N lines (then new ones, with --follow).
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
}

impl LogsArgs {
    /// What to ask the server.
    pub fn params(&self) -> LogParams {
        LogParams {
            task: self.task.clone(),
            stderr: self.stderr,
            follow: self.follow,
            tail_lines: self.tail,
        }
    }
}

pub async fn run(ctx: &Context, args: LogsArgs) -> anyhow::Result<()> {
    let mut stream = ctx
        .client
        .logs(ctx.global.namespace(), &args.alloc, &args.params())
        .await?;
    let mut out = tokio::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let written = match out.write_all(&chunk).await {
            Ok(()) => out.flush().await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {}
            // The reader went away (`caravan logs … | head`): nothing left to do.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::args::{Cli, Command};

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).expect("valid command line")
    }

    #[test]
    fn flags_become_log_params() {
        let cli = parse(&[
            "caravan", "-n", "prod", "logs", "web-1", "server", "-f", "--stderr", "--tail", "5",
        ]);
        assert_eq!(cli.global.namespace(), "prod");
        let Command::Logs(args) = cli.command else {
            panic!("not logs");
        };
        assert_eq!(args.alloc, "web-1");
        let params = args.params();
        assert_eq!(params.task.as_deref(), Some("server"));
        assert!(params.follow && params.stderr);
        assert_eq!(params.tail_lines, Some(5));
    }

    #[test]
    fn the_task_and_flags_are_optional() {
        let Command::Logs(args) = parse(&["caravan", "logs", "web-1"]).command else {
            panic!("not logs");
        };
        let params = args.params();
        assert_eq!(params, caravan_client::LogParams::default());
        assert!(Cli::try_parse_from(["caravan", "logs"]).is_err());
        assert!(Cli::try_parse_from(["caravan", "logs", "a", "--tail", "x"]).is_err());
    }
}
