//! FIX 4.4 order entry: framing and fields ([`message`]), timestamps ([`time`]), the
//! session layer ([`session`]), application messages ([`app`]) and the admin
//! messages of the admin session ([`admin`]).

pub mod admin;
pub mod app;
pub mod message;
pub mod session;
pub mod time;
