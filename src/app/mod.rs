//! The live session loops of `squall up`: the dashboard and the headless console. Each is one `tokio::select!`
//! over keys (or console lines), cluster events and a render tick. Nothing here awaits a node: actions run in
//! tasks of their own and report back as events.

mod dashboard;
mod headless;

use std::process::ExitCode;

use crate::cli::{UpArgs, WorkloadArg};
use crate::cluster::ClusterSpec;
use crate::session::{Broken, SessionConfig, end_session, start_session};
use crate::state::WorkloadKind;

/// Runs `squall up` (dashboard or headless) until quit; stops every node before returning. `started` is
/// called once the cluster is up and the event log open (it names them: nothing is named before it exists).
/// `Err`: the session ended on an I/O error (already said on standard error; every node stopped all the same),
/// for the caller to say what to do and exit with [`Broken::EXIT`].
pub async fn run(
    args: UpArgs,
    spec: ClusterSpec,
    started: impl FnOnce(),
) -> Result<ExitCode, Broken> {
    let config = SessionConfig {
        events: Some(
            args.events
                .clone()
                .unwrap_or_else(|| spec.dir.join("events.jsonl.gz")),
        ),
        spec,
        workload: args.workload.map(|w| match w {
            WorkloadArg::Counter => WorkloadKind::Counter,
            WorkloadArg::LinKv => WorkloadKind::LinKv,
            WorkloadArg::Lock => WorkloadKind::Lock,
            WorkloadArg::LockFenced => WorkloadKind::LockFenced,
            WorkloadArg::Echo => WorkloadKind::Echo,
            WorkloadArg::UniqueIds => WorkloadKind::UniqueIds,
            WorkloadArg::Broadcast => WorkloadKind::Broadcast,
            WorkloadArg::GCounter => WorkloadKind::GCounter,
            WorkloadArg::Kafka => WorkloadKind::Kafka,
        }),
        node_bin: args.node_bin.clone(),
        dump_screens: args.dump_screens.clone(),
        node_args: Vec::new(),
    };
    let (cluster, mut session, mut rx) = match start_session(config).await {
        Ok(s) => s,
        Err(e) => return Ok(crate::setup::fail(2, e)),
    };
    started();
    let code = if args.headless {
        headless::run(&cluster, &mut session, &mut rx).await
    } else {
        dashboard::run(&cluster, &mut session, &mut rx, &args).await
    };
    end_session(&cluster, &mut session, &mut rx).await;
    code
}
