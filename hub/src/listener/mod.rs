//! Network listeners: each accepts sockets and hands every one to [`crate::connection::serve`].

pub mod tcp;
pub mod ws;
