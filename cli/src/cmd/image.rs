//! `caravan image import FILE [--name NAME]` and `caravan image list`: the node's local OCI image
//! store, which the `oci` driver runs images from. Works on the local machine only (no server).

use std::path::PathBuf;

use anyhow::anyhow;
use caravan_nodeagent::image;
use clap::{Args, Subcommand};

/// Arguments of `caravan image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an OCI image layout (a directory, or a .tar / .tar.gz of one) into this node's
    /// image store.
    Import(ImportArgs),
    /// List the images of this node's image store.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ImageDirArg {
    /// The image store [default: /var/lib/caravan/images].
    #[arg(long, env = image::IMAGE_DIR_ENV, value_name = "DIR")]
    pub image_dir: Option<PathBuf>,
}

impl ImageDirArg {
    fn dir(&self) -> PathBuf {
        self.image_dir
            .clone()
            .unwrap_or_else(image::default_image_dir)
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The OCI image layout: a directory or a tar archive (optionally gzip-compressed).
    pub file: PathBuf,
    /// Name to record, `NAME[:TAG]` (a missing tag is `latest`) [default: the layout's
    /// `org.opencontainers.image.ref.name`, a bare tag prefixed with the file's stem].
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub store: ImageDirArg,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: ImageDirArg,
}

pub async fn run(args: ImageArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args)).await?
}

fn run_blocking(args: ImageArgs) -> anyhow::Result<()> {
    match args.command {
        ImageCommand::Import(a) => {
            let dir = a.store.dir();
            let imported =
                image::import(&dir, &a.file, a.name.as_deref()).map_err(|e| anyhow!(e))?;
            println!("{} {}", imported.name, imported.digest);
        }
        ImageCommand::List(a) => {
            let dir = a.store.dir();
            let images = image::list(&dir).map_err(|e| anyhow!(e))?;
            if images.is_empty() {
                eprintln!("No images in {}.", dir.display());
                return Ok(());
            }
            let width = images
                .iter()
                .map(|i| i.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!("{:<width$}   DIGEST", "NAME");
            for i in &images {
                println!("{:<width$}   {}", i.name, i.digest);
            }
        }
    }
    Ok(())
}
