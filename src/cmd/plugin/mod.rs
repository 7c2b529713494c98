//! `tailor plugin …`: one module per subcommand.

pub mod build;
pub mod inspect;
pub mod list;
pub mod new;
