//! The command vocabulary lives in [`crate::command`], below this module; these names are kept here so the
//! cluster layer and its callers read as before.

pub use crate::command::verbs::{HEADLESS_HELP, VERBS};
pub use crate::command::*;
