//! The command vocabulary lives in [`crate::command`], below this module; these names are kept here so the
//! cluster layer and its callers read as before.

pub use crate::command::fault::HEADLESS_HELP;
pub use crate::command::verbs::{ConsoleHelp, VERBS};
pub use crate::command::*;
