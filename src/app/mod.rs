//! The live session loops of `squall up`: the dashboard and the headless console. Each is one `tokio::select!`
//! over keys (or console lines), cluster events and a render tick. Nothing here awaits a node: actions run in
//! tasks of their own and report back as events.

mod dashboard;
mod headless;

use std::process::ExitCode;

use crate::cli::UpArgs;
use crate::cluster::ClusterSpec;
use crate::session::{end_session, start_session};

/// Runs `squall up` (dashboard or headless) until quit; stops every node before returning.
pub async fn run(args: UpArgs, spec: ClusterSpec) -> ExitCode {
    let (cluster, mut session, mut rx) = match start_session(&args, spec).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let code = if args.headless {
        headless::run(&cluster, &mut session, &mut rx).await
    } else {
        dashboard::run(&cluster, &mut session, &mut rx, &args).await
    };
    end_session(&cluster, &mut session, &mut rx).await;
    code
}
