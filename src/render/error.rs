//! The errors of a rendering, in a room of their own so every part of `render/` can use them.

/// What went wrong in a rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Bad input from the person: a flag, a file name, a file that is not a recording. Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}
