//! `caravan version`: the client's version, and the server's when it answers.

use caravan_client::HttpClient;
use serde_json::Value;

use crate::args::GlobalArgs;

pub async fn run(global: &GlobalArgs) -> anyhow::Result<()> {
    println!("HttpClient Version: v{}", env!("CARGO_PKG_VERSION"));
    let client = HttpClient::new(&global.address)?;
    match client.get_path::<Value>("/version").await {
        Ok(version) => {
            let text = version
                .get("gitVersion")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| version.to_string());
            println!("Server Version: {text}");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
