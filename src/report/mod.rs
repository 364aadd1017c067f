//! `squall report`: a self-contained HTML report of a session, drawn from its event log.

use std::process::ExitCode;

use crate::cli::ReportArgs;
use crate::setup::fail;

/// `squall report LOG -o FILE`.
pub fn report(args: ReportArgs) -> ExitCode {
    fail(2, format!("report of {}: not yet", args.log.display()))
}
